//! GPUs on other machines: the JSON that `vramdeck serve` speaks, and the sources that read a
//! remote box into the window (over that API, or over SSH with nothing but nvidia-smi there).

pub mod wire;
