//! Row structs, one file per table group; insert structs are separate from the rows read back.

pub(crate) mod resource;
pub(crate) mod tenant;
