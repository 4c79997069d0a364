//! `JsonBytes<T>`: a JSON response body serialized once (with serde) and documented with `T`'s
//! schema. Every success body goes through it, so a cached body and a fresh one are byte-for-byte
//! the same representation, and a cache hit is served without re-serializing anything.

use std::marker::PhantomData;

use bytes::Bytes;
use poem::{IntoResponse, Response, http::header};
use poem_openapi::{
    payload::Payload,
    registry::{MetaSchemaRef, Registry},
    types::Type,
};
use serde::Serialize;

use crate::error::AppError;

pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

pub struct JsonBytes<T> {
    bytes: Bytes,
    _schema: PhantomData<fn() -> T>,
}

impl<T: Serialize> JsonBytes<T> {
    pub fn new(value: &T) -> Result<Self, AppError> {
        serde_json::to_vec(value)
            .map(|v| Self::from_bytes(Bytes::from(v)))
            .map_err(|e| AppError::internal_from("serializing a response", e))
    }
}

impl<T> JsonBytes<T> {
    /// Bytes known to hold a serialized `T` (from the cache).
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self {
            bytes,
            _schema: PhantomData,
        }
    }
}

impl<T: Type> Payload for JsonBytes<T> {
    const CONTENT_TYPE: &'static str = JSON_CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for JsonBytes<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .header(header::CONTENT_TYPE, JSON_CONTENT_TYPE)
            .body(self.bytes)
    }
}
