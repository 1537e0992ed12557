//! Devices chosen at run time: `cpu` (Burn's flex backend), `wgpu` (the first
//! adapter: Vulkan/Metal/DX12, Mesa lavapipe without a GPU) and `cuda` (feature).

use std::str::FromStr;

use burn::tensor::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Cpu,
    Wgpu,
    Cuda,
}

impl FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(format!(
                "unknown device `{other}` (expected cpu, wgpu or cuda)"
            )),
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        })
    }
}

/// Opens a device of the given kind, or says why it cannot.
pub fn open(kind: DeviceKind) -> Result<Device, String> {
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        #[cfg(all(feature = "wgpu", target_family = "wasm"))]
        DeviceKind::Wgpu => Err(
            "in the browser WebGPU opens asynchronously (Device::wgpu_options().init_async())"
                .into(),
        ),
        #[cfg(all(feature = "wgpu", not(target_family = "wasm")))]
        DeviceKind::Wgpu => {
            // Burn registers the wgpu runtime once per process; later opens reuse it.
            static WGPU: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
            WGPU.get_or_init(|| {
                Device::wgpu_options()
                    .init()
                    .map_err(|e| format!("wgpu: no usable adapter: {e}"))
            })
            .clone()
        }
        #[cfg(not(feature = "wgpu"))]
        DeviceKind::Wgpu => Err("this build has no wgpu support (cargo feature `wgpu`)".into()),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => Ok(Device::cuda(0usize)),
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => {
            Err("this build has no CUDA support: rebuild with `--features cuda`".into())
        }
    }
}

/// Whether the device computes in f16.
pub fn supports_f16(device: &Device) -> bool {
    device.supports_dtype(burn::tensor::DType::F16)
}

/// An opened device with a name for people ("cpu (flex)", "wgpu (NVIDIA H100)").
#[derive(Debug, Clone)]
pub struct Opened {
    pub kind: DeviceKind,
    pub device: Device,
    pub name: String,
}

/// Opens `kind` and names it, with the adapter where there is one.
pub fn open_named(kind: DeviceKind) -> Result<Opened, String> {
    let device = open(kind)?;
    let name = match kind {
        DeviceKind::Cpu => "cpu (flex)".to_string(),
        #[cfg(feature = "wgpu")]
        _ => format!(
            "{kind} ({})",
            device
                .identity()
                .map_or_else(|| "unknown adapter".into(), |i| i.name)
        ),
        #[cfg(not(feature = "wgpu"))]
        _ => kind.to_string(),
    };
    Ok(Opened { kind, device, name })
}

/// The best device here: CUDA where built, else wgpu on a real GPU, else the CPU
/// (a software adapter such as lavapipe is slower than the CPU backend itself).
pub fn best() -> Opened {
    #[cfg(feature = "cuda")]
    if let Ok(o) = open_named(DeviceKind::Cuda) {
        return o;
    }
    #[cfg(feature = "wgpu")]
    if let Ok(o) = open_named(DeviceKind::Wgpu)
        && o.device.identity().is_some_and(|i| i.physical.is_some())
    {
        return o;
    }
    open_named(DeviceKind::Cpu).expect("the CPU backend always opens")
}
