//! Validated text: the trait every string newtype implements (its `parse` is the one definition
//! of a valid value), free text with character bounds (`bounded_text!`), and email syntax. The
//! API layer publishes these as schemas (`http::types`); nothing here knows it.

/// The pattern of free text: anything but NUL (PostgreSQL cannot store it). Published in the
/// spec so clients know, enforced by `http::body`.
pub const NO_NUL_PATTERN: &str = r"^[^\x00]*$";

/// The longest email address (RFC 5321's path limit less the brackets).
pub const EMAIL_MAX_LEN: usize = 254;

/// What `format: email` means (the body checker and `users::model::Email` share this one
/// definition): one `@`, a non-empty local part of at most 64 characters, a dotted
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

/// A free-text newtype of `MIN..=MAX` characters (not bytes) without NUL: the type, its
/// `parse`, and its bounds as `MIN_CHARS` / `MAX_CHARS` (published by `openapi_bounded_text!`).
/// Derive or implement `Debug` at the call site (a password must not print).
macro_rules! bounded_text {
    ($(#[$meta:meta])* $name:ident, $min:literal ..= $max:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $crate::domain::text::DomainString for $name {
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
            pub const MIN_CHARS: usize = $min;
            pub const MAX_CHARS: usize = $max;

            pub fn into_inner(self) -> String {
                self.0
            }
        }
    };
}
pub(crate) use bounded_text;
