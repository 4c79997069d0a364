//! OpenAPI glue for the domain's string newtypes (`Email`, `Username`, `PostTitle`, ...): one
//! macro gives each its schema (pattern and length bounds published in the spec and enforced by
//! `http::body`) and its JSON/parameter parsing through the type's own `parse`.

/// The pattern of free text: anything but NUL (PostgreSQL cannot store it). Published in the
/// spec so clients know, enforced by `http::body`.
pub const NO_NUL_PATTERN: &str = r"^[^\x00]*$";

/// The longest email address (RFC 5321's path limit less the brackets).
pub const EMAIL_MAX_LEN: usize = 254;

/// What the kit accepts as `format: email` (the body checker and `users::model::Email` share
/// this one definition): one `@`, a non-empty local part of at most 64 characters, a dotted
/// domain without empty labels at its ends, no spaces or control characters.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    text.len() <= EMAIL_MAX_LEN
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() || (!c.is_ascii() && !c.is_whitespace()))
}

/// A string newtype with a `parse` that is the one definition of what a valid value is.
pub trait DomainString: Sized {
    fn parse(text: &str) -> Result<Self, String>;
    fn as_str(&self) -> &str;
}

/// `openapi_string!(Username, "Username", |s| { s.pattern = ...; })` implements poem-openapi's
/// `Type`, `ParseFromJSON`, `ParseFromParameter` and `ToJSON` for a `DomainString`.
macro_rules! openapi_string {
    ($ty:ty, $name:literal, |$schema:ident| $customize:block) => {
        impl poem_openapi::types::Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                concat!("string_", $name).into()
            }

            fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
                #[allow(unused_mut)]
                let mut $schema = poem_openapi::registry::MetaSchema::new("string");
                $customize
                poem_openapi::registry::MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(
                &'a self,
            ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl poem_openapi::types::ParseFromJSON for $ty {
            fn parse_from_json(
                value: Option<serde_json::Value>,
            ) -> poem_openapi::types::ParseResult<Self> {
                match value {
                    Some(serde_json::Value::String(s)) => {
                        <$ty as $crate::http::types::DomainString>::parse(&s)
                            .map_err(poem_openapi::types::ParseError::custom)
                    }
                    other => Err(poem_openapi::types::ParseError::expected_type(
                        other.unwrap_or_default(),
                    )),
                }
            }
        }

        impl poem_openapi::types::ParseFromParameter for $ty {
            fn parse_from_parameter(value: &str) -> poem_openapi::types::ParseResult<Self> {
                <$ty as $crate::http::types::DomainString>::parse(value)
                    .map_err(poem_openapi::types::ParseError::custom)
            }
        }

        impl poem_openapi::types::ToJSON for $ty {
            fn to_json(&self) -> Option<serde_json::Value> {
                Some(serde_json::Value::String(
                    <$ty as $crate::http::types::DomainString>::as_str(self).to_owned(),
                ))
            }
        }
    };
}
pub(crate) use openapi_string;

/// A free-text newtype of `MIN..=MAX` characters (not bytes) without NUL: the type, its
/// `parse` and its published schema from one declaration. Derive or implement `Debug` at the
/// call site (a password must not print).
macro_rules! bounded_text {
    ($(#[$meta:meta])* $name:ident, $schema_name:literal, $min:literal ..= $max:literal $(, |$custom:ident| $customize:block)?) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $crate::http::types::DomainString for $name {
            fn parse(text: &str) -> Result<Self, String> {
                if ($min..=$max).contains(&text.chars().count()) && !text.contains('\0') {
                    Ok(Self(text.to_string()))
                } else {
                    Err(concat!("must be ", $min, " to ", $max, " characters long, without NUL").into())
                }
            }
            fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl $name {
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        $crate::http::types::openapi_string!($name, $schema_name, |schema| {
            schema.min_length = Some($min);
            schema.max_length = Some($max);
            schema.pattern = Some($crate::http::types::NO_NUL_PATTERN.into());
            $(
                let $custom = &mut schema;
                $customize
            )?
        });
    };
}
pub(crate) use bounded_text;
