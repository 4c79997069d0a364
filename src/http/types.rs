//! OpenAPI glue for the domain's string newtypes (`Email`, `Username`, `PostTitle`, ...; see
//! `domain::text`): one macro gives each its schema (pattern and length bounds published in the
//! spec and enforced by `http::body`) and its JSON/parameter parsing through the type's own
//! `parse`. Invoked by each resource's `schema.rs`, so models stay free of poem-openapi.

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
                        <$ty as $crate::domain::text::DomainString>::parse(&s)
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
                <$ty as $crate::domain::text::DomainString>::parse(value)
                    .map_err(poem_openapi::types::ParseError::custom)
            }
        }

        impl poem_openapi::types::ToJSON for $ty {
            fn to_json(&self) -> Option<serde_json::Value> {
                Some(serde_json::Value::String(
                    <$ty as $crate::domain::text::DomainString>::as_str(self).to_owned(),
                ))
            }
        }
    };
}
pub(crate) use openapi_string;

/// Publishes a `domain::text::bounded_text!` type's schema: its character bounds and the
/// no-NUL pattern, then whatever `customize` adds (an example, a format).
macro_rules! openapi_bounded_text {
    ($name:ident, $schema_name:literal $(, |$custom:ident| $customize:block)?) => {
        $crate::http::types::openapi_string!($name, $schema_name, |schema| {
            schema.min_length = Some($name::MIN_CHARS);
            schema.max_length = Some($name::MAX_CHARS);
            schema.pattern = Some($crate::domain::text::NO_NUL_PATTERN.into());
            $(
                let $custom = &mut schema;
                $customize
            )?
        });
    };
}
pub(crate) use openapi_bounded_text;
