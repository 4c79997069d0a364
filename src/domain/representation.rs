//! Which API version's representation background work writes: a webhook endpoint's
//! `apiVersion`, an export's path version. The writing itself is the composition's
//! (`state::Renderers`, installed by `api::renderers`): nothing below it imports a version.

/// An API version, as stored with the work that renders in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    V1,
    V2,
}

impl Representation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "v1" => Some(Self::V1),
            "v2" => Some(Self::V2),
            _ => None,
        }
    }
}
