//! What differs between operating systems, one small module per concern, each with the same
//! interface on every platform; the rest of the code asks here instead of testing `cfg`s.

pub mod console;
pub mod fonts;
