//! Workloads and what fits: the preset catalogue, the advisor, and calibration on this machine.

pub mod advisor;
pub mod calibration;
pub mod catalogue;
