//! burn-ndarray lends the kernels its tensors through `TensorData` (one contiguous copy of each
//! input; the outputs are adopted without one).

use burn::backend::NdArray;
use burn::prelude::*;

use super::host::HostMemory;
use super::kernels::View;

/// A tensor's values, row-major, and its shape.
#[derive(Clone)]
pub(super) struct Values<T> {
    data: Vec<T>,
    dims: Vec<usize>,
}

impl<T: Copy> Values<T> {
    /// The 4-d view, size-1 axes broadcast.
    fn view(&self) -> View<'_, T> {
        let d = [self.dims[0], self.dims[1], self.dims[2], self.dims[3]];
        View::contiguous(&self.data, d).broadcast(d)
    }
}

impl HostMemory for NdArray<f32> {
    const LENDS_IN_PLACE: bool = false; // `into_data` copies
    type Floats = Values<f32>;
    type Bools = Values<u8>;

    fn strided<const D: usize>(t: Tensor<Self, D>) -> Values<f32> {
        Self::contiguous(t)
    }

    fn contiguous<const D: usize>(t: Tensor<Self, D>) -> Values<f32> {
        let dims = t.dims().to_vec();
        // f32 tensors only (the callers check the dtype), so the conversion cannot fail
        let data = t.into_data().convert::<f32>().to_vec().unwrap_or_default();
        Values { data, dims }
    }

    fn bools(t: Tensor<Self, 4, Bool>) -> Values<u8> {
        let dims = t.dims().to_vec();
        let data = t.into_data().iter::<bool>().map(u8::from).collect();
        Values { data, dims }
    }

    fn view(t: &Values<f32>) -> View<'_, f32> {
        t.view()
    }

    fn values(t: &Values<f32>) -> &[f32] {
        &t.data
    }

    fn writable(t: Values<f32>) -> Values<f32> {
        t // `contiguous` made a copy of its own
    }

    fn values_mut(t: &mut Values<f32>) -> &mut [f32] {
        &mut t.data
    }

    fn into_tensor<const D: usize>(t: Values<f32>, dims: [usize; D]) -> Tensor<Self, D> {
        Tensor::from_data(TensorData::new(t.data, dims), &Default::default())
    }

    fn bool_view(t: &Values<u8>) -> View<'_, u8> {
        t.view()
    }
}
