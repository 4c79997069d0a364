//! 204 and 304 as values, not errors; the problem of an error response; the `ETag` header.

use progenitor_client::{Error, ResponseValue};
use reqwest::StatusCode;

/// The result of a conditional GET (`If-None-Match`).
#[derive(Debug)]
pub enum Conditional<T> {
    /// The resource changed (or no `If-None-Match` was sent): here it is.
    Modified(T),
    /// 304: the copy the caller holds is current.
    NotModified,
}

impl<T> Conditional<T> {
    /// The new representation, if any.
    pub fn modified(self) -> Option<T> {
        match self {
            Self::Modified(value) => Some(value),
            Self::NotModified => None,
        }
    }
}

/// Turns the statuses progenitor reports as "unexpected" into values:
/// `client.delete_post().id(id).send().await.optional()?` is `None` for 204, and
/// `client.get_post().id(id).if_none_match(etag).send().await.conditional()?` is
/// [`Conditional::NotModified`] for 304.
pub trait StatusResults<T, E> {
    /// 204 No Content (e.g. a DELETE of what is already gone) as `Ok(None)`.
    // The error type is progenitor's, as every generated method returns it.
    #[allow(clippy::result_large_err)]
    fn optional(self) -> Result<Option<ResponseValue<T>>, Error<E>>;
    /// 304 Not Modified as `Ok(Conditional::NotModified)`.
    #[allow(clippy::result_large_err)]
    fn conditional(self) -> Result<Conditional<ResponseValue<T>>, Error<E>>;
}

impl<T, E> StatusResults<T, E> for Result<ResponseValue<T>, Error<E>> {
    fn optional(self) -> Result<Option<ResponseValue<T>>, Error<E>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(Error::UnexpectedResponse(r)) if r.status() == StatusCode::NO_CONTENT => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn conditional(self) -> Result<Conditional<ResponseValue<T>>, Error<E>> {
        match self {
            Ok(value) => Ok(Conditional::Modified(value)),
            Err(Error::UnexpectedResponse(r)) if r.status() == StatusCode::NOT_MODIFIED => {
                Ok(Conditional::NotModified)
            }
            Err(error) => Err(error),
        }
    }
}

/// The problem (the typed error body) of an error response, if the error is one.
pub fn problem<T>(error: &Error<T>) -> Option<&T> {
    match error {
        Error::ErrorResponse(response) => Some(response.as_ref()),
        _ => None,
    }
}

/// The `ETag` header of a response, for `If-Match` / `If-None-Match`.
pub fn etag<T>(response: &ResponseValue<T>) -> Option<String> {
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}
