//! Reading tensors back to the host: the one place where a backend's data becomes a `Vec`.

use burn::prelude::*;

use crate::error::{Error, Result};

/// The values of `t` as f32 (converted from its dtype), row-major; `what` names it in the error.
pub fn read_back<B: Backend, const D: usize>(t: Tensor<B, D>, what: &str) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .into_vec()
        .map_err(|e| Error::Backend(format!("reading {what} back: {e:?}")))
}

/// The values of an integer tensor as i64; `what` names it in the error.
pub fn read_back_ints<B: Backend, const D: usize>(
    t: Tensor<B, D, Int>,
    what: &str,
) -> Result<Vec<i64>> {
    t.into_data()
        .convert::<i64>()
        .into_vec()
        .map_err(|e| Error::Backend(format!("reading {what} back: {e:?}")))
}
