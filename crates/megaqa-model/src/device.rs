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
                tuning::configure();
                Device::wgpu_options()
                    .init()
                    .map_err(|e| format!("wgpu: no usable adapter: {e}"))
            })
            .clone()
        }
        #[cfg(not(feature = "wgpu"))]
        DeviceKind::Wgpu => Err("this build has no wgpu support (cargo feature `wgpu`)".into()),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => {
            tuning::configure();
            Ok(Device::cuda(0usize))
        }
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => {
            Err("this build has no CUDA support: rebuild with `--features cuda`".into())
        }
    }
}

#[cfg(all(feature = "network", not(target_family = "wasm")))]
pub mod tuning {
    //! Where the GPU backends keep what they learn about a device: autotune's choices
    //! (which matmul kernel is fastest for each shape) and compiled kernels, so that
    //! the second run of a command does not tune and compile again.

    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};

    /// Sets CubeCL's configuration once, before the first GPU device opens, keeping a
    /// notice for people ([`notice`]) when the cache had to be set aside. A `cubecl.toml`
    /// (or `burn.toml`) in the working directory or above still wins, as do CubeCL's
    /// environment variables; only its default cache place changes: CubeCL's default is
    /// the enclosing Cargo project's `target/` (the user cache outside one), which would
    /// scatter caches over whatever directory megaqa runs in. `MEGAQA_TUNE_CACHE=DIR`
    /// puts the cache in DIR.
    pub fn configure() {
        NOTICE.get_or_init(|| {
            let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
            if let Some(dir) = std::env::var_os("MEGAQA_TUNE_CACHE") {
                config.environment.path = CacheConfig::Directory(dir.into());
            } else if matches!(config.environment.path, CacheConfig::Target) {
                config.environment.path = CacheConfig::Global;
            }
            // Fails only when a configuration was set or read already: keep that one.
            CubeClRuntimeConfig::try_set(config);
            set_aside_if_corrupt(&database())
        });
    }

    static NOTICE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

    /// What [`configure`] had to say, if a GPU device was opened or probed: nothing
    /// when only the CPU ran, which never touches CubeCL's configuration.
    pub fn notice() -> Option<String> {
        NOTICE.get().cloned().flatten()
    }

    /// The database file the cache lives in.
    fn database() -> std::path::PathBuf {
        burn::cubecl::environment::path()
    }

    /// CubeCL reads a damaged database as an empty one and then cannot write to it, so
    /// every run would tune again in silence: a file that is not SQLite is moved aside
    /// (with its journal files), and the next run starts a fresh cache.
    fn set_aside_if_corrupt(db: &std::path::Path) -> Option<String> {
        use std::io::Read;
        let mut head = [0u8; 16];
        let n = std::fs::File::open(db).ok()?.read(&mut head).ok()?;
        if n == 0 || head == *b"SQLite format 3\0" {
            return None;
        }
        let aside = db.with_extension("db.corrupt");
        let moved = std::fs::rename(db, &aside);
        for journal in ["-wal", "-shm", "-tshm"] {
            let mut p = db.as_os_str().to_owned();
            p.push(journal);
            let _ = std::fs::remove_file(std::path::PathBuf::from(p));
        }
        Some(match moved {
            Ok(()) => format!(
                "the GPU tuning cache {} was not a database; moved it to {} and tuning again",
                db.display(),
                aside.display()
            ),
            Err(e) => format!(
                "the GPU tuning cache {} is not a database and cannot be moved ({e}); delete it to keep tuning results",
                db.display()
            ),
        })
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
        _ => {
            let adapter = device
                .identity()
                .map_or_else(|| "unknown adapter".into(), |i| i.name);
            match kernel_language(&device) {
                Some(language) => format!("{kind} ({adapter}, {language})"),
                None => format!("{kind} ({adapter})"),
            }
        }
        #[cfg(not(feature = "wgpu"))]
        _ => kind.to_string(),
    };
    Ok(Opened { kind, device, name })
}

/// What a GPU device's kernels are compiled to, from its runtime's name: wgpu says
/// "wgpu<spirv>" on a Vulkan adapter that takes SPIR-V (the `vulkan` feature) and
/// "wgpu<wgsl>" elsewhere. Worth showing: only SPIR-V reaches tensor cores.
#[cfg(feature = "wgpu")]
fn kernel_language(device: &Device) -> Option<&'static str> {
    match device.as_dispatch() {
        burn_dispatch::DispatchDevice::Cube(cube) => Some(match cube.client().name() {
            "wgpu<spirv>" => "SPIR-V",
            "wgpu<wgsl>" => "WGSL",
            "wgpu<msl>" => "MSL",
            _ => return None,
        }),
        _ => None,
    }
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
