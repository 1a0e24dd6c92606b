//! Laptop GPUs that sleep. A hybrid laptop powers its NVIDIA GPU down when nothing uses it
//! (PCI runtime power management); any NVML call — and an open NVML handle alone — wakes it and
//! keeps it awake, costing battery. So the device's runtime PM status is read from sysfs first,
//! which never wakes it, and a suspended GPU is shown as asleep instead of being read.

use std::path::{Path, PathBuf};

/// PCI vendor id of NVIDIA.
const NVIDIA: &str = "0x10de";

/// An NVIDIA display controller (PCI class 0x03xxxx) found in sysfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciGpu {
    /// Its address, lower case, without the domain's leading zeros: "0000:01:00.0".
    pub address: String,
}

/// Where sysfs is (a test points it at a fake tree).
#[derive(Clone, Debug)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs::at("/sys")
    }
}

impl Sysfs {
    /// sysfs mounted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Sysfs { root: root.into() }
    }

    fn device(&self, address: &str) -> PathBuf {
        self.root.join("bus/pci/devices").join(address)
    }

    /// NVIDIA GPUs in PCI address order (NVML's index order).
    pub fn nvidia_gpus(&self) -> Vec<PciGpu> {
        let Ok(entries) = std::fs::read_dir(self.root.join("bus/pci/devices")) else {
            return Vec::new();
        };
        let read = |dir: &Path, file: &str| {
            std::fs::read_to_string(dir.join(file))
                .map(|s| s.trim().to_ascii_lowercase())
                .unwrap_or_default()
        };
        let mut gpus: Vec<PciGpu> = entries
            .flatten()
            .filter(|e| {
                let dir = e.path();
                read(&dir, "vendor") == NVIDIA && read(&dir, "class").starts_with("0x03")
            })
            .map(|e| PciGpu {
                address: e.file_name().to_string_lossy().to_ascii_lowercase(),
            })
            .collect();
        gpus.sort_by(|a, b| a.address.cmp(&b.address));
        gpus
    }

    /// True when the device at `address` is runtime-suspended. Any other state, or no sysfs
    /// entry, counts as awake: only a GPU known to sleep is left alone.
    pub fn is_suspended(&self, address: &str) -> bool {
        std::fs::read_to_string(self.device(address).join("power/runtime_status"))
            .is_ok_and(|s| s.trim() == "suspended")
    }

    /// True when there are NVIDIA GPUs and every one of them is suspended.
    pub fn all_suspended(&self) -> bool {
        let gpus = self.nvidia_gpus();
        !gpus.is_empty() && gpus.iter().all(|g| self.is_suspended(&g.address))
    }
}

/// NVML's bus id ("00000000:01:00.0") as sysfs names the device ("0000:01:00.0").
pub fn sysfs_address(nvml_bus_id: &str) -> String {
    let id = nvml_bus_id.trim().to_ascii_lowercase();
    match id.split_once(':') {
        Some((domain, rest)) if domain.len() > 4 => {
            format!("{}:{rest}", &domain[domain.len() - 4..])
        }
        _ => id,
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A fake sysfs with NVIDIA GPUs at `gpus` (address, runtime status) and an Intel iGPU.
    pub fn fake_sysfs(gpus: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let add = |address: &str, vendor: &str, class: &str, status: &str| {
            let d = dir.path().join("bus/pci/devices").join(address);
            std::fs::create_dir_all(d.join("power")).unwrap();
            std::fs::write(d.join("vendor"), format!("{vendor}\n")).unwrap();
            std::fs::write(d.join("class"), format!("{class}\n")).unwrap();
            std::fs::write(d.join("power/runtime_status"), format!("{status}\n")).unwrap();
        };
        add("0000:00:02.0", "0x8086", "0x030000", "active");
        add("0000:00:1f.3", "0x10de", "0x040300", "suspended"); // an NVIDIA audio function
        for (address, status) in gpus {
            add(address, NVIDIA, "0x030200", status);
        }
        dir
    }

    #[test]
    fn only_nvidia_display_controllers_count_in_address_order() {
        let dir = fake_sysfs(&[("0000:41:00.0", "active"), ("0000:01:00.0", "suspended")]);
        let sysfs = Sysfs::at(dir.path());
        let addresses: Vec<String> = sysfs.nvidia_gpus().into_iter().map(|g| g.address).collect();
        assert_eq!(addresses, ["0000:01:00.0", "0000:41:00.0"]);
        assert!(sysfs.is_suspended("0000:01:00.0"));
        assert!(!sysfs.is_suspended("0000:41:00.0"));
        assert!(!sysfs.all_suspended());
    }

    #[test]
    fn a_laptop_whose_gpu_sleeps_is_all_suspended() {
        let dir = fake_sysfs(&[("0000:01:00.0", "suspended")]);
        assert!(Sysfs::at(dir.path()).all_suspended());
        // No GPU in sysfs (a container without /sys): nothing is known to sleep.
        assert!(!Sysfs::at("/nonexistent").all_suspended());
    }

    #[test]
    fn nvml_bus_ids_map_to_sysfs_names() {
        assert_eq!(sysfs_address("00000000:01:00.0"), "0000:01:00.0");
        assert_eq!(sysfs_address("0000:C1:00.0"), "0000:c1:00.0");
    }
}
