//! Reading tensors back to the host: the one place where a backend's data becomes a `Vec`.

use crate::fused::FusedBackend;
use burn::prelude::*;

use crate::error::{Error, Result};

/// The values of `t` as f32 (converted from its dtype), row-major; `what` names it in the error.
pub fn read_back<B: FusedBackend, const D: usize>(t: Tensor<B, D>, what: &str) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .into_vec()
        .map_err(|e| Error::Backend(format!("reading {what} back: {e:?}")))
}

/// The values of an integer tensor as i64; `what` names it in the error.
pub fn read_back_ints<B: FusedBackend, const D: usize>(
    t: Tensor<B, D, Int>,
    what: &str,
) -> Result<Vec<i64>> {
    t.into_data()
        .convert::<i64>()
        .into_vec()
        .map_err(|e| Error::Backend(format!("reading {what} back: {e:?}")))
}

/// Whether backend `B` keeps its tensors in host memory (flex, ndarray, libtorch on the CPU,
/// also under autodiff), where reading one back costs a copy at most and there are no kernels
/// to compile: the edge's choice between host-side and device-side variants of a step.
pub fn host_memory<B: FusedBackend>(device: &B::Device) -> bool {
    let name = B::name(device);
    ["flex", "ndarray", "libtorch<cpu>"]
        .iter()
        .any(|host| name.contains(host))
}
