// Finds an element as a person would: by its label, by its role and accessible name, by the
// text they see, or (last resort) by a CSS selector. Evaluated through the DevTools protocol
// (which the page's CSP does not block): this expression is an object with `find(kind, a, b)`,
// which returns the first visible match or null, and `describe(el)` (`role "name"`). The accessible name is a simplified version of the W3C algorithm:
// aria-labelledby, aria-label, <label>, alt, the button's value, then the element's own text.
(() => {
  const norm = (s) => (s || '').replace(/\s+/g, ' ').trim();
  const visible = (el) =>
    el.checkVisibility
      ? el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })
      : el.getClientRects().length > 0;
  const textOf = (el) => norm(el.innerText !== undefined ? el.innerText : el.textContent);
  const byIds = (ids) =>
    norm(
      ids
        .split(/\s+/)
        .map((id) => {
          const e = document.getElementById(id);
          return e ? e.textContent : '';
        })
        .join(' ')
    );
  const labelName = (el) => {
    if (el.hasAttribute('aria-labelledby')) return byIds(el.getAttribute('aria-labelledby'));
    if (el.hasAttribute('aria-label')) return norm(el.getAttribute('aria-label'));
    if (el.labels && el.labels.length)
      return norm(Array.from(el.labels).map((l) => l.innerText || l.textContent).join(' '));
    return '';
  };
  const NAMED_BY_TEXT = ['button', 'a', 'summary', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'option',
    'legend', 'caption', 'th', 'td', 'li', 'label', 'dt', 'dd'];
  const name = (el) => {
    const l = labelName(el);
    if (l) return l;
    const tag = el.tagName.toLowerCase();
    if (tag === 'img' || (tag === 'input' && el.type === 'image')) return norm(el.alt);
    if (tag === 'input' && ['submit', 'button', 'reset'].includes(el.type))
      return norm(el.value || { submit: 'Submit', reset: 'Reset' }[el.type] || '');
    if (NAMED_BY_TEXT.includes(tag) || el.hasAttribute('role')) {
      const t = textOf(el);
      if (t) return t;
    }
    if (tag === 'fieldset') {
      const lg = el.querySelector(':scope > legend');
      if (lg) return textOf(lg);
    }
    if (tag === 'table') {
      const c = el.querySelector(':scope > caption');
      if (c) return textOf(c);
    }
    return norm(el.getAttribute('title') || '');
  };
  const INPUT_ROLES = {
    button: 'button', submit: 'button', reset: 'button', image: 'button', checkbox: 'checkbox',
    radio: 'radio', range: 'slider', number: 'spinbutton', search: 'searchbox', email: 'textbox',
    tel: 'textbox', text: 'textbox', url: 'textbox',
  };
  const SECTIONING = 'article,aside,main,nav,section';
  const role = (el) => {
    const explicit = el.getAttribute('role');
    if (explicit) return explicit.split(/\s+/)[0];
    const tag = el.tagName.toLowerCase();
    switch (tag) {
      case 'a': case 'area': return el.hasAttribute('href') ? 'link' : null;
      case 'button': case 'summary': return 'button';
      case 'input': return INPUT_ROLES[(el.getAttribute('type') || 'text').toLowerCase()] || null;
      case 'textarea': return 'textbox';
      case 'select': return el.multiple || el.size > 1 ? 'listbox' : 'combobox';
      case 'option': return 'option';
      case 'h1': case 'h2': case 'h3': case 'h4': case 'h5': case 'h6': return 'heading';
      case 'nav': return 'navigation';
      case 'main': return 'main';
      case 'header': return el.closest(SECTIONING) ? null : 'banner';
      case 'footer': return el.closest(SECTIONING) ? null : 'contentinfo';
      case 'aside': return 'complementary';
      case 'form': return name(el) ? 'form' : null;
      case 'section': return name(el) ? 'region' : null;
      case 'article': return 'article';
      case 'ul': case 'ol': return 'list';
      case 'li': return 'listitem';
      case 'table': return 'table';
      case 'tr': return 'row';
      case 'td': return 'cell';
      case 'th': return 'columnheader';
      case 'dialog': return 'dialog';
      case 'fieldset': case 'details': return 'group';
      case 'progress': return 'progressbar';
      case 'img': return el.getAttribute('alt') === '' ? 'presentation' : 'img';
    }
    return null;
  };
  const CONTROLS = 'input:not([type=hidden]),select,textarea,[contenteditable=""],' +
    '[contenteditable=true],[role=textbox],[role=combobox],[role=checkbox],[role=radio],' +
    '[role=switch],[role=searchbox],[role=slider],[role=spinbutton],[role=listbox]';
  const find = (kind, a, b) => {
    let found = [];
    if (kind === 'label') {
      found = Array.from(document.querySelectorAll(CONTROLS)).filter((el) => labelName(el) === a);
    } else if (kind === 'role') {
      found = Array.from(document.querySelectorAll('*')).filter(
        (el) => role(el) === a && (b === null || name(el) === b)
      );
    } else if (kind === 'text') {
      // The innermost visible elements whose rendered text contains `a`.
      const walk = (el) => {
        let deeper = false;
        for (const c of el.children) {
          if (visible(c) && textOf(c).includes(a)) {
            deeper = true;
            walk(c);
          }
        }
        if (!deeper) found.push(el);
      };
      if (document.body && textOf(document.body).includes(a)) walk(document.body);
    } else if (kind === 'css') {
      found = Array.from(document.querySelectorAll(a));
    }
    return found.find(visible) || null;
  };
  const describe = (el) => {
    const r = role(el) || el.tagName.toLowerCase();
    const n = name(el);
    return n ? `${r} "${n}"` : r;
  };
  return { find, describe };
})()
