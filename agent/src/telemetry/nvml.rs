//! GPU readings from NVML, behind the small [`GpuSource`] trait so the decoding (throttle
//! bitmask, readings a GPU does not support) is tested with a fake.
//!
//! Every reading is fetched on its own: a GPU that does not support one (ECC on consumer
//! cards, the slowdown threshold on some boards, power on others) keeps all the others.
//! [`decode_gpu`] turns the raw readings into the wire type and lists what was missing; the
//! collector logs each missing kind once.
//!
//! XID errors (the driver's reports of GPU faults) exist only as NVML events: at start the
//! source registers an event set per GPU for critical XIDs, and each telemetry tick drains
//! what has arrived with a zero timeout ([`GpuSource::poll_xid_events`]), so the collector
//! never blocks on them.

use nvml_wrapper::bitmasks::device::ThrottleReasons as NvmlThrottle;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::event::EventSet;
use nvml_wrapper::Nvml;
use proofrack_common::telemetry::{GpuTelemetry, ThrottleReasons};
use std::sync::OnceLock;

/// Why one reading is absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The GPU or driver does not offer this reading (expected on some boards).
    NotSupported,
    /// NVML failed to read it (GPU lost, driver too old for the symbol, ...).
    Failed(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotSupported => f.write_str("not supported by this GPU or driver"),
            ReadError::Failed(reason) => f.write_str(reason),
        }
    }
}

impl From<NvmlError> for ReadError {
    fn from(e: NvmlError) -> Self {
        match e {
            NvmlError::NotSupported => ReadError::NotSupported,
            other => ReadError::Failed(other.to_string()),
        }
    }
}

/// One reading: its value or why it is missing.
pub type Reading<T> = Result<T, ReadError>;

/// Everything read from one GPU, each reading independently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawGpuReadings {
    pub uuid: Reading<String>,
    pub name: Reading<String>,
    /// (total, free) framebuffer bytes; NVML reads both in one call.
    pub memory_bytes: Reading<(u64, u64)>,
    /// (gpu, memory) utilisation in percent; one NVML call.
    pub utilization_pct: Reading<(u32, u32)>,
    pub sm_clock_mhz: Reading<u32>,
    pub memory_clock_mhz: Reading<u32>,
    pub temperature_c: Reading<u32>,
    pub temperature_slowdown_c: Reading<u32>,
    pub power_draw_mw: Reading<u32>,
    pub power_limit_mw: Reading<u32>,
    /// The NVML `clocksEventReasons` (formerly throttle reasons) bitmask.
    pub throttle_mask: Reading<u64>,
    /// Volatile (since driver load) uncorrectable ECC errors.
    pub ecc_uncorrectable_volatile: Reading<u64>,
}

/// The kinds of reading, for "log once per kind".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GpuField {
    Uuid,
    Name,
    Memory,
    Utilization,
    SmClock,
    MemoryClock,
    Temperature,
    TemperatureSlowdown,
    PowerDraw,
    PowerLimit,
    Throttle,
    Ecc,
}

impl GpuField {
    pub fn as_str(self) -> &'static str {
        match self {
            GpuField::Uuid => "uuid",
            GpuField::Name => "name",
            GpuField::Memory => "memory",
            GpuField::Utilization => "utilization",
            GpuField::SmClock => "sm_clock",
            GpuField::MemoryClock => "memory_clock",
            GpuField::Temperature => "temperature",
            GpuField::TemperatureSlowdown => "temperature_slowdown",
            GpuField::PowerDraw => "power_draw",
            GpuField::PowerLimit => "power_limit",
            GpuField::Throttle => "throttle_reasons",
            GpuField::Ecc => "ecc_uncorrectable",
        }
    }
}

/// One critical XID error the driver reported for a GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XidEvent {
    pub gpu: u32,
    /// The XID number (e.g. 79: the GPU fell off the bus); 0 where NVML gave none.
    pub xid: u64,
}

/// At most this many XID events are drained per tick: a GPU in an error storm must not
/// stall the telemetry report; the rest wait in NVML's queue for the next tick.
pub const MAX_XID_EVENTS_PER_POLL: usize = 64;

/// Where GPU readings come from: NVML in production, a fake in tests.
pub trait GpuSource: Send {
    fn driver_version(&self) -> Result<String, ReadError>;
    fn device_count(&self) -> Result<u32, ReadError>;
    /// All readings of GPU `index`. `Err` only when the device itself cannot be opened.
    fn read_gpu(&self, index: u32) -> Result<RawGpuReadings, ReadError>;
    /// XID errors reported since the last call, without waiting for any (at most
    /// [`MAX_XID_EVENTS_PER_POLL`]). `Err` when the events cannot be read at all.
    fn poll_xid_events(&mut self) -> Result<Vec<XidEvent>, ReadError>;
}

/// The real source: an initialised NVML library and its XID event sets.
pub struct NvmlSource {
    nvml: &'static Nvml,
    /// One set per GPU that accepted the registration, so one GPU that refuses XID events
    /// (NotSupported) costs only its own.
    xid_events: Vec<(u32, EventSet<'static>)>,
    /// Why registration failed, per GPU that refused it (reported once by the collector).
    xid_unavailable: Vec<(u32, String)>,
}

/// NVML is initialised once per process and lives until exit: the event sets borrow it,
/// and the devnet runs several agents (collectors) in one process.
static NVML: OnceLock<Result<Nvml, String>> = OnceLock::new();

impl NvmlSource {
    /// Loads `libnvidia-ml.so.1` and initialises NVML (once per process), then registers
    /// for critical XID events on every GPU. Fails cleanly (no panic) where the driver is
    /// absent; the error says why.
    pub fn init() -> Result<Self, String> {
        let nvml = match NVML.get_or_init(|| Nvml::init().map_err(|e| e.to_string())) {
            Ok(nvml) => nvml,
            Err(e) => return Err(e.clone()),
        };
        let mut source = NvmlSource {
            nvml,
            xid_events: Vec::new(),
            xid_unavailable: Vec::new(),
        };
        for index in 0..nvml.device_count().unwrap_or(0) {
            match register_xid_events(nvml, index) {
                Ok(set) => source.xid_events.push((index, set)),
                Err(e) => source.xid_unavailable.push((index, e)),
            }
        }
        Ok(source)
    }

    /// GPUs whose XID errors cannot be watched, with the reason.
    pub fn xid_unavailable(&self) -> &[(u32, String)] {
        &self.xid_unavailable
    }
}

fn register_xid_events(nvml: &'static Nvml, index: u32) -> Result<EventSet<'static>, String> {
    let set = nvml.create_event_set().map_err(|e| e.to_string())?;
    nvml.device_by_index(index)
        .map_err(|e| e.to_string())?
        .register_events(EventTypes::CRITICAL_XID_ERROR, set)
        .map_err(|e| e.error.to_string())
}

impl GpuSource for NvmlSource {
    fn driver_version(&self) -> Result<String, ReadError> {
        Ok(self.nvml.sys_driver_version()?)
    }

    fn device_count(&self) -> Result<u32, ReadError> {
        Ok(self.nvml.device_count()?)
    }

    fn read_gpu(&self, index: u32) -> Result<RawGpuReadings, ReadError> {
        let d = self.nvml.device_by_index(index)?;
        Ok(RawGpuReadings {
            uuid: r(d.uuid()),
            name: r(d.name()),
            memory_bytes: r(d.memory_info().map(|m| (m.total, m.free))),
            utilization_pct: r(d.utilization_rates().map(|u| (u.gpu, u.memory))),
            sm_clock_mhz: r(d.clock_info(Clock::SM)),
            memory_clock_mhz: r(d.clock_info(Clock::Memory)),
            temperature_c: r(d.temperature(TemperatureSensor::Gpu)),
            temperature_slowdown_c: r(d.temperature_threshold(TemperatureThreshold::Slowdown)),
            power_draw_mw: r(d.power_usage()),
            power_limit_mw: r(d.enforced_power_limit()),
            // `from_bits_truncate` inside the wrapper drops bits newer than it knows; the
            // ones admission looks at are all known.
            throttle_mask: r(d.current_throttle_reasons().map(|t| t.bits())),
            ecc_uncorrectable_volatile: r(
                d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
            ),
        })
    }

    fn poll_xid_events(&mut self) -> Result<Vec<XidEvent>, ReadError> {
        let mut events = Vec::new();
        for (gpu, set) in &self.xid_events {
            while events.len() < MAX_XID_EVENTS_PER_POLL {
                // Timeout 0: return at once with Timeout when nothing is queued.
                match set.wait(0) {
                    Ok(data) => events.push(XidEvent {
                        gpu: *gpu,
                        xid: match data.event_data {
                            Some(XidError::Value(xid)) => xid,
                            _ => 0,
                        },
                    }),
                    Err(NvmlError::Timeout) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(events)
    }
}

/// One reading's result with NVML's error mapped.
fn r<T>(result: Result<T, NvmlError>) -> Reading<T> {
    result.map_err(ReadError::from)
}

/// Decodes NVML's clocks-event (throttle) bitmask into the reasons admission cares about.
pub fn decode_throttle(mask: u64) -> ThrottleReasons {
    let has = |flag: NvmlThrottle| mask & flag.bits() != 0;
    ThrottleReasons {
        raw: mask,
        hw_slowdown: has(NvmlThrottle::HW_SLOWDOWN),
        hw_thermal_slowdown: has(NvmlThrottle::HW_THERMAL_SLOWDOWN),
        hw_power_brake_slowdown: has(NvmlThrottle::HW_POWER_BRAKE_SLOWDOWN),
        sw_thermal_slowdown: has(NvmlThrottle::SW_THERMAL_SLOWDOWN),
        sw_power_cap: has(NvmlThrottle::SW_POWER_CAP),
    }
}

/// Turns raw readings into the wire type. A missing reading becomes its neutral value
/// (`0`, empty, `None`, no throttling) and is listed in the second result so the caller can
/// log it; missing free memory reads as 0 bytes free, which admission treats conservatively.
pub fn decode_gpu(index: u32, raw: RawGpuReadings) -> (GpuTelemetry, Vec<(GpuField, ReadError)>) {
    let mut missing = Vec::new();
    let m = &mut missing;
    let (memory_total_bytes, memory_free_bytes) =
        take(m, GpuField::Memory, raw.memory_bytes).unwrap_or((0, 0));
    let (utilization_gpu_pct, utilization_memory_pct) =
        take(m, GpuField::Utilization, raw.utilization_pct).unwrap_or((0, 0));
    let gpu = GpuTelemetry {
        index,
        uuid: take(m, GpuField::Uuid, raw.uuid).unwrap_or_default(),
        name: take(m, GpuField::Name, raw.name).unwrap_or_else(|| "unknown".to_owned()),
        memory_total_bytes,
        // NVML can briefly report free > total while memory is being released; clamp so
        // "free ≤ total" holds for admission.
        memory_free_bytes: memory_free_bytes.min(memory_total_bytes),
        utilization_gpu_pct,
        utilization_memory_pct,
        sm_clock_mhz: take(m, GpuField::SmClock, raw.sm_clock_mhz).unwrap_or(0),
        memory_clock_mhz: take(m, GpuField::MemoryClock, raw.memory_clock_mhz).unwrap_or(0),
        temperature_c: take(m, GpuField::Temperature, raw.temperature_c).unwrap_or(0),
        temperature_slowdown_c: take(m, GpuField::TemperatureSlowdown, raw.temperature_slowdown_c),
        power_draw_mw: take(m, GpuField::PowerDraw, raw.power_draw_mw).unwrap_or(0),
        power_limit_mw: take(m, GpuField::PowerLimit, raw.power_limit_mw).unwrap_or(0),
        throttle: take(m, GpuField::Throttle, raw.throttle_mask)
            .map(decode_throttle)
            .unwrap_or_default(),
        ecc_uncorrectable_total: take(m, GpuField::Ecc, raw.ecc_uncorrectable_volatile),
    };
    (gpu, missing)
}

/// The value of one reading, or `None` with the miss recorded.
fn take<T>(
    missing: &mut Vec<(GpuField, ReadError)>,
    field: GpuField,
    reading: Reading<T>,
) -> Option<T> {
    reading.map_err(|e| missing.push((field, e))).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Readings of a healthy, fully supported GPU.
    pub(crate) fn full_readings(uuid: &str) -> RawGpuReadings {
        RawGpuReadings {
            uuid: Ok(uuid.to_owned()),
            name: Ok("NVIDIA H100 80GB HBM3".to_owned()),
            memory_bytes: Ok((80 << 30, 70 << 30)),
            utilization_pct: Ok((35, 12)),
            sm_clock_mhz: Ok(1980),
            memory_clock_mhz: Ok(2619),
            temperature_c: Ok(41),
            temperature_slowdown_c: Ok(87),
            power_draw_mw: Ok(123_456),
            power_limit_mw: Ok(700_000),
            throttle_mask: Ok(NvmlThrottle::GPU_IDLE.bits()),
            ecc_uncorrectable_volatile: Ok(0),
        }
    }

    #[test]
    fn throttle_bits_decode_to_their_own_reason_only() {
        let cases = [
            (NvmlThrottle::HW_SLOWDOWN, 0b00001),
            (NvmlThrottle::HW_THERMAL_SLOWDOWN, 0b00010),
            (NvmlThrottle::HW_POWER_BRAKE_SLOWDOWN, 0b00100),
            (NvmlThrottle::SW_THERMAL_SLOWDOWN, 0b01000),
            (NvmlThrottle::SW_POWER_CAP, 0b10000),
        ];
        for (flag, expected) in cases {
            let t = decode_throttle(flag.bits());
            let got = (t.hw_slowdown as u8)
                | (t.hw_thermal_slowdown as u8) << 1
                | (t.hw_power_brake_slowdown as u8) << 2
                | (t.sw_thermal_slowdown as u8) << 3
                | (t.sw_power_cap as u8) << 4;
            assert_eq!(got, expected, "{flag:?}");
            assert_eq!(t.raw, flag.bits());
        }
    }

    #[test]
    fn nvml_bit_values_match_the_nvml_header() {
        // nvml.h: nvmlClocksEventReason* values; a wrapper upgrade that changed them would
        // silently mis-decode.
        assert_eq!(NvmlThrottle::SW_POWER_CAP.bits(), 0x4);
        assert_eq!(NvmlThrottle::HW_SLOWDOWN.bits(), 0x8);
        assert_eq!(NvmlThrottle::SW_THERMAL_SLOWDOWN.bits(), 0x20);
        assert_eq!(NvmlThrottle::HW_THERMAL_SLOWDOWN.bits(), 0x40);
        assert_eq!(NvmlThrottle::HW_POWER_BRAKE_SLOWDOWN.bits(), 0x80);
    }

    #[test]
    fn idle_and_power_cap_are_not_throttling_but_thermal_is() {
        let idle = decode_throttle(NvmlThrottle::GPU_IDLE.bits());
        assert_eq!(
            idle,
            ThrottleReasons {
                raw: 0x1,
                ..Default::default()
            }
        );
        assert!(!idle.is_throttling());
        let capped = decode_throttle(0x4 | 0x1);
        assert!(capped.sw_power_cap && !capped.is_throttling());
        let hot = decode_throttle(0x40 | 0x4);
        assert!(hot.hw_thermal_slowdown && hot.sw_power_cap && hot.is_throttling());
        // Unknown future bits are kept in `raw` and decode to nothing.
        let future = decode_throttle(1 << 40);
        assert_eq!(future.raw, 1 << 40);
        assert!(!future.is_throttling() && !future.sw_power_cap);
    }

    #[test]
    fn a_fully_supported_gpu_decodes_every_reading() {
        let (gpu, missing) = decode_gpu(3, full_readings("GPU-abc"));
        assert!(missing.is_empty(), "{missing:?}");
        assert_eq!(gpu.index, 3);
        assert_eq!(gpu.uuid, "GPU-abc");
        assert_eq!(gpu.memory_total_bytes, 80 << 30);
        assert_eq!(gpu.memory_free_bytes, 70 << 30);
        assert_eq!(
            (gpu.utilization_gpu_pct, gpu.utilization_memory_pct),
            (35, 12)
        );
        assert_eq!((gpu.sm_clock_mhz, gpu.memory_clock_mhz), (1980, 2619));
        assert_eq!(
            (gpu.temperature_c, gpu.temperature_slowdown_c),
            (41, Some(87))
        );
        assert_eq!((gpu.power_draw_mw, gpu.power_limit_mw), (123_456, 700_000));
        assert_eq!(gpu.throttle.raw, 0x1);
        assert_eq!(gpu.ecc_uncorrectable_total, Some(0));
    }

    #[test]
    fn a_missing_reading_loses_only_itself() {
        let mut raw = full_readings("GPU-x");
        raw.ecc_uncorrectable_volatile = Err(ReadError::NotSupported);
        raw.temperature_slowdown_c = Err(ReadError::NotSupported);
        raw.power_draw_mw = Err(ReadError::Failed("GPU is lost".into()));
        let (gpu, missing) = decode_gpu(0, raw);
        let kinds: Vec<GpuField> = missing.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            kinds,
            vec![
                GpuField::TemperatureSlowdown,
                GpuField::PowerDraw,
                GpuField::Ecc
            ]
        );
        assert_eq!(gpu.ecc_uncorrectable_total, None);
        assert_eq!(gpu.temperature_slowdown_c, None);
        assert_eq!(gpu.power_draw_mw, 0);
        // Everything else survived.
        assert_eq!(gpu.power_limit_mw, 700_000);
        assert_eq!(gpu.temperature_c, 41);
        assert_eq!(gpu.memory_free_bytes, 70 << 30);
    }

    #[test]
    fn nothing_readable_still_decodes_to_neutral_values() {
        fn e<T>() -> Reading<T> {
            Err(ReadError::NotSupported)
        }
        let raw = RawGpuReadings {
            uuid: e(),
            name: e(),
            memory_bytes: e(),
            utilization_pct: e(),
            sm_clock_mhz: e(),
            memory_clock_mhz: e(),
            temperature_c: e(),
            temperature_slowdown_c: e(),
            power_draw_mw: e(),
            power_limit_mw: e(),
            throttle_mask: e(),
            ecc_uncorrectable_volatile: e(),
        };
        let (gpu, missing) = decode_gpu(1, raw);
        assert_eq!(missing.len(), 12);
        assert_eq!(gpu.uuid, "");
        assert_eq!(gpu.name, "unknown");
        assert_eq!((gpu.memory_total_bytes, gpu.memory_free_bytes), (0, 0));
        assert_eq!(gpu.throttle, ThrottleReasons::default());
    }

    #[test]
    fn free_memory_is_clamped_to_total() {
        let mut raw = full_readings("GPU-y");
        raw.memory_bytes = Ok((10, 11));
        let (gpu, _) = decode_gpu(0, raw);
        assert_eq!(gpu.memory_free_bytes, 10);
    }

    #[test]
    fn nvml_not_supported_maps_to_not_supported() {
        assert_eq!(
            ReadError::from(NvmlError::NotSupported),
            ReadError::NotSupported
        );
        assert!(
            matches!(ReadError::from(NvmlError::GpuLost), ReadError::Failed(s) if !s.is_empty())
        );
    }
}
