//! burn-flex lends the kernels its tensors' buffers in place: they read them through their
//! strides (a transposed view costs no copy). The KV cache is written in place.

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::{DType, TensorPrimitive};

use super::host::HostMemory;
use super::kernels::View;
use super::{composed, kernel_on, Kernel};

/// A tensor whose strides are all non-negative (a flipped view is copied first).
fn non_negative_strides(t: FlexTensor) -> FlexTensor {
    if t.layout().strides().iter().any(|&s| s < 0) {
        t.to_contiguous()
    } else {
        t
    }
}

/// The 4-d view of `t`'s buffer (`t` from [`non_negative_strides`]), size-1 axes broadcast.
fn view<T: burn::tensor::Element + bytemuck::Pod>(t: &FlexTensor) -> View<'_, T> {
    let (s, d) = (t.layout().strides(), t.layout().shape());
    View {
        data: t.storage::<T>(),
        offset: t.layout().start_offset(),
        strides: [s[0] as usize, s[1] as usize, s[2] as usize, s[3] as usize],
    }
    .broadcast([d[0], d[1], d[2], d[3]])
}

impl HostMemory for Flex<f32> {
    const LENDS_IN_PLACE: bool = true;
    type Floats = FlexTensor;
    type Bools = FlexTensor;

    fn strided<const D: usize>(t: Tensor<Self, D>) -> FlexTensor {
        non_negative_strides(t.into_primitive().tensor())
    }

    fn contiguous<const D: usize>(t: Tensor<Self, D>) -> FlexTensor {
        t.into_primitive().tensor().to_contiguous()
    }

    fn lends_row_major<const D: usize>(t: &Tensor<Self, D>) -> bool {
        // the conditions of `FlexTensor::to_contiguous` for returning the tensor itself
        let t = t.clone().into_primitive().tensor();
        let l = t.layout();
        t.dtype() == DType::F32
            && l.is_contiguous()
            && l.start_offset() == 0
            && t.storage::<f32>().len() == l.num_elements()
    }

    fn bools(t: Tensor<Self, 4, Bool>) -> FlexTensor {
        non_negative_strides(t.into_primitive())
    }

    fn view(t: &FlexTensor) -> View<'_, f32> {
        view(t)
    }

    fn values(t: &FlexTensor) -> &[f32] {
        let start = t.layout().start_offset();
        &t.storage::<f32>()[start..start + t.layout().num_elements()]
    }

    fn bool_view(t: &FlexTensor) -> View<'_, u8> {
        view(t)
    }

    fn writable(mut t: FlexTensor) -> FlexTensor {
        let whole = t.layout().is_contiguous()
            && t.layout().start_offset() == 0
            && t.storage::<f32>().len() == t.layout().num_elements();
        if whole && t.try_storage_mut::<f32>().is_some() {
            return t;
        }
        let dims = t.layout().shape().to_vec();
        FlexTensor::from_data(TensorData::new(Self::values(&t).to_vec(), dims))
    }

    fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
        // `writable` made `t` the only holder of its buffer; an empty slice otherwise (the
        // kernels check their slices' lengths)
        t.try_storage_mut::<f32>().unwrap_or_default()
    }

    fn into_tensor<const D: usize>(t: FlexTensor, dims: [usize; D]) -> Tensor<Self, D> {
        Tensor::<Self, 1>::from_primitive(TensorPrimitive::Float(t)).reshape(dims)
    }

    /// In place when `buf` is an f32 buffer nobody else holds (burn-flex 0.21's `slice_assign`
    /// copies the whole buffer on every write); `slice_assign` otherwise.
    fn cache_write(buf: Tensor<Self, 4>, offset: usize, new: Tensor<Self, 4>) -> Tensor<Self, 4> {
        let [b, h, s, d] = new.dims();
        let cap = buf.dims()[2];
        let in_place = kernel_on(Kernel::CacheWrite, buf.dtype())
            && new.dtype() == DType::F32
            && offset + s <= cap;
        if !in_place {
            return composed::cache_write(buf, offset, new);
        }
        let mut t = buf.into_primitive().tensor();
        let new = Self::strided(new);
        let fresh = t.layout().is_contiguous() && t.layout().start_offset() == 0;
        let wrap = |t| Tensor::<Self, 4>::from_primitive(TensorPrimitive::Float(t));
        match t.try_storage_mut::<f32>().filter(|_| fresh) {
            Some(dst) => {
                let src = view::<f32>(&new);
                for bi in 0..b {
                    for hh in 0..h {
                        for j in 0..s {
                            let at = ((bi * h + hh) * cap + offset + j) * d;
                            src.row(bi, hh, j, &mut dst[at..at + d]);
                        }
                    }
                }
                wrap(t)
            }
            None => composed::cache_write(wrap(t), offset, wrap(new)),
        }
    }
}
