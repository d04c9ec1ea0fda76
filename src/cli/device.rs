//! The `--device` flag: which compiled-in backend runs, and on which device. Only the parsing
//! lives here; `cli/mod.rs` maps a [`DeviceSpec`] to a concrete Burn backend.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A backend choice from `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// `cpu`: the default CPU backend (`flex` if compiled in, else `ndarray`).
    Cpu,
    /// `ndarray`
    NdArray,
    /// `flex`
    Flex,
    /// `wgpu`: the default wgpu adapter (Vulkan/Metal/DX12; lavapipe on a CPU-only Linux box)
    Wgpu,
    /// `cuda` or `cuda:N`
    Cuda(usize),
    /// `tch` or `tch:cpu`
    TchCpu,
    /// `tch:cuda` or `tch:cuda:N`
    TchCuda(usize),
}

impl DeviceSpec {
    /// The Cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Self::NdArray => "ndarray",
            Self::Cpu | Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::Cuda(_) => "cuda",
            Self::TchCpu | Self::TchCuda(_) => "tch",
        }
    }

    /// The error for a backend that this binary was built without.
    pub fn not_compiled(self) -> Error {
        if cfg!(feature = "nccl") && !matches!(self, Self::Wgpu | Self::Cuda(_)) {
            return Error::arg(
                format!("--device {self}"),
                "this binary was built with `nccl`, which leaves out every backend but cuda and \
                 wgpu (Burn 0.21's distributed autodiff); use a build without `nccl`",
            );
        }
        Error::arg(
            format!("--device {self}"),
            format!(
                "this binary was built without the `{}` backend; rebuild with \
                 `cargo build --release --features {}`",
                self.feature(),
                self.feature()
            ),
        )
    }
}

impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let index = |n: &str| {
            n.parse::<usize>().map_err(|_| {
                Error::arg(
                    format!("--device {s}"),
                    format!("`{n}` is not a device index"),
                )
            })
        };
        match s.split(':').collect::<Vec<_>>().as_slice() {
            ["cpu"] => Ok(Self::Cpu),
            ["ndarray"] => Ok(Self::NdArray),
            ["flex"] => Ok(Self::Flex),
            ["wgpu"] => Ok(Self::Wgpu),
            ["cuda"] => Ok(Self::Cuda(0)),
            ["cuda", n] => Ok(Self::Cuda(index(n)?)),
            ["tch"] | ["tch", "cpu"] => Ok(Self::TchCpu),
            ["tch", "cuda"] => Ok(Self::TchCuda(0)),
            ["tch", "cuda", n] => Ok(Self::TchCuda(index(n)?)),
            _ => Err(Error::Invalid(format!(
                "unknown --device `{s}` (expected cpu, ndarray, flex, wgpu, cuda[:N], tch[:cpu|:cuda:N])"
            ))),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::NdArray => write!(f, "ndarray"),
            Self::Flex => write!(f, "flex"),
            Self::Wgpu => write!(f, "wgpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::TchCpu => write!(f, "tch:cpu"),
            Self::TchCuda(n) => write!(f, "tch:cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_devices() {
        for (s, d) in [
            ("cpu", DeviceSpec::Cpu),
            ("ndarray", DeviceSpec::NdArray),
            ("flex", DeviceSpec::Flex),
            ("wgpu", DeviceSpec::Wgpu),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
            ("tch", DeviceSpec::TchCpu),
            ("tch:cpu", DeviceSpec::TchCpu),
            ("tch:cuda:1", DeviceSpec::TchCuda(1)),
        ] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap(), d, "{s}");
        }
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!("tpu"
            .parse::<DeviceSpec>()
            .unwrap_err()
            .to_string()
            .contains("tpu"));
        assert!(DeviceSpec::Cuda(0)
            .not_compiled()
            .to_string()
            .contains("--features cuda"));
    }
}
