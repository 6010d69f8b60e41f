//! liftkit's one rule on keys (no object names a key twice, see [`super::parse_value`]), checked
//! in the pass that decodes a value rather than in a second one: [`from_str`] hands `T` a
//! deserializer that wraps serde_json's, notes every key of every object on the way, and reads
//! what `T` skips (serde's `IgnoredAny`) with [`KeyCheck`] instead of skipping it blind.
//!
//! The keys of the objects being read are on one stack shared by every level (each object's above
//! its parent's, dropped at its end), so a line costs one allocation, not one per object. A key is
//! compared after its value is read, as [`super::parse_value`] does, so the error names the same
//! place.

use serde::de::value::{BorrowedStrDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// `text` decoded as `T`, refusing an object anywhere in it that names a key twice, whether `T`
/// reads that object or skips it.
pub(super) fn from_str<'de, T: de::Deserialize<'de>>(text: &'de str) -> serde_json::Result<T> {
    let mut keys = Vec::with_capacity(64);
    let mut json = serde_json::Deserializer::from_str(text);
    let value = T::deserialize(Checked {
        inner: &mut json,
        keys: &mut keys,
    })?;
    json.end()?;
    Ok(value)
}

type Keys<'k, 'de> = &'k mut Vec<Key<'de>>;

/// A key as the line has it (borrowed unless it had escapes), with a fingerprint that tells most
/// unequal keys apart in one comparison.
struct Key<'de>(Cow<'de, str>, u32);

impl<'de> Key<'de> {
    fn new(text: Cow<'de, str>) -> Key<'de> {
        let bytes = text.as_bytes();
        let at = |i: usize| u32::from(bytes.get(i).copied().unwrap_or(0));
        let len = bytes.len();
        let print =
            (len as u32) ^ (at(0) << 8) ^ (at(len.wrapping_sub(1)) << 16) ^ (at(len / 2) << 24);
        Key(text, print)
    }

    /// Which of the 256 bits of an object's [`Seen`] this key sets.
    fn bit(&self) -> (usize, u64) {
        let mixed = self.1.wrapping_mul(0x9E37_79B1) >> 24;
        ((mixed >> 6) as usize & 3, 1u64 << (mixed & 63))
    }
}

/// The fingerprints an object's keys have shown so far, as bits: a record's top object has some
/// 60 keys, and a key whose bit is not yet set is new without comparing it with any of them.
#[derive(Default)]
struct Seen([u64; 4]);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::new(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::new(v.to_string().into()))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Pushes `key` on the stack of the object whose keys start at `start`, or refuses it.
fn note_key<'de, E: de::Error>(
    keys: Keys<'_, 'de>,
    start: usize,
    seen: &mut Seen,
    key: Key<'de>,
) -> Result<(), E> {
    let (word, bit) = key.bit();
    let maybe_seen = seen.0[word] & bit != 0;
    seen.0[word] |= bit;
    if maybe_seen && keys[start..].iter().any(|k| k.1 == key.1 && k.0 == key.0) {
        return Err(E::custom(format!(
            "duplicate key {}",
            Value::String(key.0.into_owned())
        )));
    }
    keys.push(key);
    Ok(())
}

/// Any JSON value, read only to find an object that names a key twice.
struct KeyCheck<'k, 'de> {
    keys: Keys<'k, 'de>,
}

impl<'de> DeserializeSeed<'de> for KeyCheck<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyCheck<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(KeyCheck {
                keys: &mut *self.keys,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (start, mut seen) = (self.keys.len(), Seen::default());
        while let Some(key) = map.next_key::<Key<'de>>()? {
            map.next_value_seed(KeyCheck {
                keys: &mut *self.keys,
            })?;
            note_key(self.keys, start, &mut seen, key)?;
        }
        self.keys.truncate(start);
        Ok(())
    }
}

/// serde_json's deserializer (or a part of it), noting keys for the rule.
struct Checked<'k, 'de, D> {
    inner: D,
    keys: Keys<'k, 'de>,
}

/// Forwards `deserialize_*` methods to the inner deserializer with the visitor wrapped.
macro_rules! wrap_visitor {
    ($($method:ident($($arg:ident: $ty:ty),*))*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = Wrapped { inner: visitor, keys: self.keys };
            self.inner.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Checked<'_, 'de, D> {
    type Error = D::Error;

    wrap_visitor! {
        deserialize_any() deserialize_bool() deserialize_i8() deserialize_i16() deserialize_i32()
        deserialize_i64() deserialize_i128() deserialize_u8() deserialize_u16() deserialize_u32()
        deserialize_u64() deserialize_u128() deserialize_f32() deserialize_f64()
        deserialize_char() deserialize_str() deserialize_string() deserialize_bytes()
        deserialize_byte_buf() deserialize_option() deserialize_unit() deserialize_seq()
        deserialize_map() deserialize_identifier()
        deserialize_unit_struct(name: &'static str)
        deserialize_newtype_struct(name: &'static str)
        deserialize_tuple(len: usize)
        deserialize_tuple_struct(name: &'static str, len: usize)
        deserialize_struct(name: &'static str, fields: &'static [&'static str])
        deserialize_enum(name: &'static str, variants: &'static [&'static str])
    }

    /// What `T` skips is read for the rule all the same.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        KeyCheck { keys: self.keys }.deserialize(self.inner)?;
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// `T`'s visitor, handed maps, sequences and nested values that note keys.
struct Wrapped<'k, 'de, V> {
    inner: V,
    keys: Keys<'k, 'de>,
}

/// Forwards `visit_*` methods of plain values as they are.
macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrapped<'_, 'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let keys = self.keys;
        self.inner.visit_some(Checked { inner: d, keys })
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let keys = self.keys;
        self.inner.visit_newtype_struct(Checked { inner: d, keys })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let keys = self.keys;
        self.inner.visit_seq(Wrapped { inner: seq, keys })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let start = self.keys.len();
        let map = CheckedMap {
            inner: map,
            keys: &mut *self.keys,
            start,
            seen: Seen::default(),
            pending: None,
        };
        let value = self.inner.visit_map(map)?;
        self.keys.truncate(start);
        Ok(value)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let keys = self.keys;
        self.inner.visit_enum(Wrapped { inner: data, keys })
    }
}

/// A seed (or a sequence, or an enum) whose values note keys.
impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrapped<'_, 'de, S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        let keys = self.keys;
        self.inner.deserialize(Checked { inner: d, keys })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrapped<'_, 'de, A> {
    type Error = A::Error;
    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let keys = &mut *self.keys;
        self.inner.next_element_seed(Wrapped { inner: seed, keys })
    }
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'k, 'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Wrapped<'k, 'de, A> {
    type Error = A::Error;
    type Variant = Wrapped<'k, 'de, A::Variant>;
    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((
            value,
            Wrapped {
                inner: variant,
                keys: self.keys,
            },
        ))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Wrapped<'_, 'de, A> {
    type Error = A::Error;
    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        let keys = self.keys;
        self.inner
            .newtype_variant_seed(Wrapped { inner: seed, keys })
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
        let keys = self.keys;
        self.inner.tuple_variant(len, Wrapped { inner: v, keys })
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, A::Error> {
        let keys = self.keys;
        self.inner
            .struct_variant(fields, Wrapped { inner: v, keys })
    }
}

/// An object being read by `T`: each key is handed to `T` as it is, and noted once its value is
/// read.
struct CheckedMap<'k, 'de, A> {
    inner: A,
    keys: Keys<'k, 'de>,
    /// Where this object's keys start on the stack.
    start: usize,
    seen: Seen,
    /// The key whose value comes next.
    pending: Option<Key<'de>>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for CheckedMap<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.inner.next_key::<Key<'de>>()? else {
            return Ok(None);
        };
        let value = match &key.0 {
            Cow::Borrowed(text) => seed.deserialize(BorrowedStrDeserializer::new(text))?,
            Cow::Owned(text) => seed.deserialize(StrDeserializer::new(text))?,
        };
        self.pending = Some(key);
        Ok(Some(value))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let keys = &mut *self.keys;
        let value = self.inner.next_value_seed(Wrapped { inner: seed, keys })?;
        let key = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("a value before its key"))?;
        note_key(self.keys, self.start, &mut self.seen, key)?;
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}
