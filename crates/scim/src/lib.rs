#![doc = include_str!("../README.md")]

pub mod error;
pub mod filter;
pub mod messages;
pub mod patch;
pub mod projection;
pub mod resource;
pub mod schema;
pub mod value;

pub use error::{ErrorResponse, ScimError, ScimType};
