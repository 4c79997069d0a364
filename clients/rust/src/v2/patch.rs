//! Merge-patch bodies whose fields can be absent (leave alone), `null` (clear) or a value: a
//! generated `Option` can only say absent or value.

use serde::{Deserialize, Serialize, Serializer};

/// One field of a JSON merge-patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Field<T> {
    /// Not sent: the server keeps the current value.
    #[default]
    Keep,
    /// Sent as `null`: the server removes the value.
    Clear,
    /// Sent: the server stores it.
    Set(T),
}

impl<T> Field<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Field::Keep)
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Set(value) => value.serialize(serializer),
            // `Keep` is skipped by the containers below; serializing it alone means null.
            Field::Keep | Field::Clear => serializer.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(value) => Field::Set(value),
            None => Field::Clear,
        })
    }
}

/// `PATCH /v1/users/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPatchRequest {
    #[serde(default, skip_serializing_if = "Field::is_keep")]
    pub first_name: Field<String>,
    #[serde(default, skip_serializing_if = "Field::is_keep")]
    pub last_name: Field<String>,
    /// ADMIN only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::types::Role>,
    /// ADMIN only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

/// `PATCH /v1/airports/{code}` (creates the airport when absent; then `runways` is required).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AirportPatchRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub airport_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runways: Option<i32>,
    #[serde(default, skip_serializing_if = "Field::is_keep")]
    pub takeoffs_per_hour: Field<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_is_absent_clear_is_null_set_is_the_value() {
        let patch = AirportPatchRequest {
            runways: Some(3),
            takeoffs_per_hour: Field::Clear,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap_or_default(),
            serde_json::json!({"runways": 3, "takeoffsPerHour": null})
        );
        let patch = UserPatchRequest {
            first_name: Field::Set("Ada".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap_or_default(),
            serde_json::json!({"firstName": "Ada"})
        );
    }
}
