//! Amounts of money as people read and type them: ISO 4217 minor units (`1234567` EUR is
//! `12,345.67 EUR`), shared by the deal forms, the board and the analytics dashboard.

/// The digits after the decimal point of an ISO 4217 currency (its minor unit).
pub(crate) fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// `1234567` EUR → `12,345.67 EUR`.
pub(crate) fn format_money(minor: i128, currency: &str) -> String {
    let digits = minor_digits(currency);
    let scale = 10u128.pow(digits);
    let abs = minor.unsigned_abs();
    let whole = (abs / scale).to_string();
    let mut out = String::new();
    if minor < 0 {
        out.push('-');
    }
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if digits > 0 {
        out.push_str(&format!(".{:0w$}", abs % scale, w = digits as usize));
    }
    out.push(' ');
    out.push_str(currency);
    out
}

/// `125050` EUR → `1250.50`: an amount as [`parse_amount`] reads it back (for a form's value).
pub(crate) fn format_amount(minor: i128, currency: &str) -> String {
    let digits = minor_digits(currency);
    let scale = 10u128.pow(digits);
    let abs = minor.unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    if digits == 0 {
        format!("{sign}{abs}")
    } else {
        format!(
            "{sign}{}.{:0w$}",
            abs / scale,
            abs % scale,
            w = digits as usize
        )
    }
}

/// An amount as a person types it (`1250`, `1,250.50`, `1250,5`) in the currency's minor unit.
pub(crate) fn parse_amount(raw: &str, currency: &str) -> Result<i64, String> {
    let digits = minor_digits(currency);
    let s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '\'')
        .collect();
    if s.is_empty() {
        return Err("enter an amount, like 1250.00 (0 if not known yet)".into());
    }
    if s.starts_with('-') {
        return Err("must be zero or more".into());
    }
    // A comma is the decimal separator when it is the only one and ends in 1..=digits digits
    // (`1250,5`); otherwise commas separate thousands (`1,250.50`).
    let s = if !s.contains('.')
        && s.matches(',').count() == 1
        && s.rsplit(',')
            .next()
            .is_some_and(|t| (1..=digits as usize).contains(&t.len()))
    {
        s.replace(',', ".")
    } else {
        s.replace(',', "")
    };
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    let all_digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(format!("must be an amount like 1250.50, not {raw:?}"));
    }
    if frac.len() > digits as usize {
        return Err(if digits == 0 {
            format!("{currency} has no decimals")
        } else {
            format!("{currency} has at most {digits} decimals")
        });
    }
    let too_large = || "is too large".to_owned();
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<w$}", w = digits as usize)
            .parse()
            .map_err(|_| too_large())?
    };
    whole
        .checked_mul(10i64.pow(digits))
        .and_then(|v| v.checked_add(frac))
        .ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_in_the_currency_s_minor_unit() {
        assert_eq!(parse_amount("1250", "EUR"), Ok(125_000));
        assert_eq!(parse_amount("1,250.50", "EUR"), Ok(125_050));
        assert_eq!(parse_amount("1250,5", "EUR"), Ok(125_050));
        assert_eq!(parse_amount("1 250.05", "USD"), Ok(125_005));
        assert_eq!(parse_amount(".5", "EUR"), Ok(50));
        assert_eq!(parse_amount("1,250", "EUR"), Ok(125_000), "thousands");
        assert_eq!(parse_amount("1500", "JPY"), Ok(1500));
        assert_eq!(parse_amount("1.250", "KWD"), Ok(1250));
        assert!(parse_amount("1.5", "JPY")
            .unwrap_err()
            .contains("no decimals"));
        assert!(parse_amount("1.555", "EUR")
            .unwrap_err()
            .contains("at most 2"));
        assert!(parse_amount("-3", "EUR")
            .unwrap_err()
            .contains("zero or more"));
        assert!(parse_amount("abc", "EUR").is_err());
        assert!(parse_amount("", "EUR").is_err());
        assert!(parse_amount(".", "EUR").is_err());
        assert!(parse_amount("1.2.3", "EUR").is_err());
        assert_eq!(
            parse_amount("99999999999999999999", "EUR"),
            Err("is too large".into())
        );
        assert_eq!(parse_amount("92233720368547758.07", "EUR"), Ok(i64::MAX));
        assert_eq!(
            parse_amount("92233720368547758.08", "EUR"),
            Err("is too large".into())
        );
    }

    #[test]
    fn a_form_s_amount_reads_back_as_the_same_value() {
        for (minor, cur, shown) in [
            (125_050, "EUR", "1250.50"),
            (5, "USD", "0.05"),
            (0, "EUR", "0.00"),
            (1500, "JPY", "1500"),
            (1250, "KWD", "1.250"),
            (i64::MAX, "EUR", "92233720368547758.07"),
        ] {
            assert_eq!(format_amount(i128::from(minor), cur), shown);
            assert_eq!(parse_amount(shown, cur), Ok(minor), "{shown} {cur}");
        }
    }

    #[test]
    fn money_is_shown_with_its_currency() {
        assert_eq!(format_money(125_050, "EUR"), "1,250.50 EUR");
        assert_eq!(format_money(5, "USD"), "0.05 USD");
        assert_eq!(format_money(1500, "JPY"), "1,500 JPY");
        assert_eq!(format_money(1250, "KWD"), "1.250 KWD");
        assert_eq!(format_money(0, "EUR"), "0.00 EUR");
        assert_eq!(
            format_money(i128::from(i64::MAX) * 2, "EUR"),
            "184,467,440,737,095,516.14 EUR"
        );
    }
}
