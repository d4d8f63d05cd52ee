//! Readers for `#[serde(deserialize_with = …)]` that accept any JSON and read a value of the
//! wrong shape as absent, the way `Value::get(..).and_then(Value::as_str)` did: the inbound
//! payload's structs ([`super::payload`]) use one on every field, so a malformed part of a
//! webhook never fails the whole body. Separate from the payload because it says nothing about
//! Meta, only about reading JSON leniently.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use time::OffsetDateTime;

/// What a lenient field makes of each JSON shape; a shape it does not take is `None` (and,
/// for arrays and objects, consumed).
trait Lenient<'de>: Sized {
    fn from_str(_: Cow<'de, str>) -> Option<Self> {
        None
    }
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    /// `null`, booleans and floats.
    fn from_other() -> Option<Self> {
        None
    }
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Lenient<'de>> Visitor<'de> for LenientVisitor<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(T::from_str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(T::from_str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(T::from_str(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(T::from_i64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(T::from_u64(v))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(T::from_other())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(T::from_other())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(T::from_other())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(T::from_other())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        T::from_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::from_map(map)
    }
}

fn lenient<'de, D: Deserializer<'de>, T: Lenient<'de>>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_any(LenientVisitor(PhantomData))
}

/// A string (borrowed from the body when it has no escapes), else `None`.
impl<'de> Lenient<'de> for Cow<'de, str> {
    fn from_str(v: Cow<'de, str>) -> Option<Self> {
        Some(v)
    }
}

pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    lenient(d)
}

/// A string of a `Value` being read (always borrowed from it), else `None`.
impl<'de> Lenient<'de> for &'de str {
    fn from_str(v: Cow<'de, str>) -> Option<Self> {
        match v {
            Cow::Borrowed(s) => Some(s),
            Cow::Owned(_) => None,
        }
    }
}

pub(super) fn str_of_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de str>, D::Error> {
    lenient(d)
}

/// Unix seconds as a string or a number that fits an `i64` (as `Value::as_i64` read them).
struct UnixTime(OffsetDateTime);

impl<'de> Lenient<'de> for UnixTime {
    fn from_str(v: Cow<'de, str>) -> Option<Self> {
        Self::from_i64(v.parse().ok()?)
    }
    fn from_i64(v: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp(v).ok().map(UnixTime)
    }
    fn from_u64(v: u64) -> Option<Self> {
        Self::from_i64(i64::try_from(v).ok()?)
    }
}

pub(super) fn unix_time<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<OffsetDateTime>, D::Error> {
    Ok(lenient::<D, UnixTime>(d)?.map(|t| t.0))
}

/// An object read as `T`; any other value as `T::default()` (so `Some` whenever the key is
/// there, as `Value::get` saw it).
struct Obj<T>(T);

impl<'de, T: Deserialize<'de> + Default> Lenient<'de> for Obj<T> {
    fn from_str(_: Cow<'de, str>) -> Option<Self> {
        Some(Obj(T::default()))
    }
    fn from_i64(_: i64) -> Option<Self> {
        Some(Obj(T::default()))
    }
    fn from_u64(_: u64) -> Option<Self> {
        Some(Obj(T::default()))
    }
    fn from_other() -> Option<Self> {
        Some(Obj(T::default()))
    }
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Some(Obj(T::default())))
    }
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Some(Obj(t)))
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(lenient(d)?.unwrap_or_else(|| Obj(T::default())))
    }
}

pub(super) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(lenient::<D, Obj<T>>(d)?.map(|o| o.0))
}

/// An array of objects read as `T` (any other element as `T::default()`), else `None`.
struct Objects<T>(Vec<T>);

impl<'de, T: Deserialize<'de> + Default> Lenient<'de> for Objects<T> {
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(Obj(t)) = seq.next_element::<Obj<T>>()? {
            out.push(t);
        }
        Ok(Some(Objects(out)))
    }
}

pub(super) fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    Ok(lenient::<D, Objects<T>>(d)?.map(|o| o.0))
}

/// An array of any JSON values, else `None`.
struct Values(Vec<Value>);

impl<'de> Lenient<'de> for Values {
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element::<Value>()? {
            out.push(v);
        }
        Ok(Some(Values(out)))
    }
}

pub(super) fn values<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Value>>, D::Error> {
    Ok(lenient::<D, Values>(d)?.map(|v| v.0))
}

/// Any JSON value, `null` included (`Some` whenever the key is there).
pub(super) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}
