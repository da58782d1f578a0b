//! `sockmeter-rust-host`: a Rust program that meters its own plugins with [`sockmeter::embed`].
//!
//! ```text
//! sockmeter-rust-host --port PORT [--json FILE] [--weather SO] [--stocks SO]
//! ```
//!
//! The shim is linked ahead of libc by `build.rs` (no `LD_PRELOAD`), so every socket call in
//! this process, the plugins' included, goes through it. The host
//!
//! 1. finds the shim ([`sockmeter::embed::start`]) and subscribes to its events,
//! 2. loads the two example plugins with `dlopen` (`libweather_plugin.so`, C, through
//!    libcurl; `libstocks_plugin.so`, Rust) and calls each one's `plugin_run` under a label
//!    of the plugin's name ([`sockmeter::embed::label`]), against the loopback server on
//!    127.0.0.1:PORT (`examples/server`, a separate process),
//! 3. prints what the shim charged to each plugin (module and label), the process totals and
//!    the events seen; `--json FILE` also writes the snapshot ([`ProcessReport`]) there.
//!
//! The plugins default to the ones this workspace builds: the weather plugin compiled by
//! `build.rs`, the stocks plugin next to this executable. Exit status: 0 when both plugins
//! ran and the snapshot was read, 1 otherwise, 2 on usage errors.

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};

use sockmeter::report::ProcessReport;
use sockmeter::wire::Message;

extern "C" {
    /// The shim's version (`include/sockmeter.h`). Called directly, not through `dlsym`: this
    /// reference is what makes the linker keep `libsockmeter_shim.so` NEEDED (build.rs).
    fn sockmeter_version() -> *const c_char;
}

/// The version of the shim this process runs with.
fn shim_version() -> String {
    // SAFETY: the shim returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(sockmeter_version()) }
        .to_string_lossy()
        .into_owned()
}

/// The plugins' C ABI.
type PluginRun = unsafe extern "C" fn(*const c_char, *mut c_char, usize) -> c_int;

/// Command-line settings.
struct Args {
    port: u16,
    json: Option<PathBuf>,
    weather: Option<PathBuf>,
    stocks: Option<PathBuf>,
}

const USAGE: &str = "usage: sockmeter-rust-host --port PORT [--json FILE] [--weather SO] [--stocks SO]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        port: 0,
        json: None,
        weather: None,
        stocks: None,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(flag) = it.next() {
        let flag = flag.to_string_lossy().into_owned();
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                a.port = v
                    .to_string_lossy()
                    .parse()
                    .map_err(|_| format!("--port {v:?}: not a port"))?;
            }
            "--json" => a.json = Some(value()?.into()),
            "--weather" => a.weather = Some(value()?.into()),
            "--stocks" => a.stocks = Some(value()?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.port == 0 {
        return Err("--port is required".into());
    }
    Ok(a)
}

/// The weather plugin built by `build.rs`, or why there is none.
fn default_weather() -> Result<PathBuf, String> {
    match env!("SOCKMETER_EXAMPLE_WEATHER") {
        "" => Err(env!("SOCKMETER_EXAMPLE_WEATHER_ERROR").to_string()),
        p => Ok(PathBuf::from(p)),
    }
}

/// The stocks plugin next to this executable (both are built into target/<profile>/).
fn default_stocks() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    Ok(exe.parent().unwrap_or(Path::new(".")).join("libstocks_plugin.so"))
}

/// A loaded plugin. It stays loaded until the process ends: the report names it by path.
struct Plugin {
    run: PluginRun,
}

fn load(path: &Path) -> Result<Plugin, String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{}: NUL in the path", path.display()))?;
    // SAFETY: dlopen with a valid C string; the handle is never closed.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        // SAFETY: dlerror returns NULL or a C string valid until the next dl* call.
        let e = unsafe { libc::dlerror() };
        let msg = if e.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: non-NULL C string from dlerror.
            unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
        };
        return Err(format!("cannot load {}: {msg}", path.display()));
    }
    // SAFETY: dlsym on a live handle with a valid C string.
    let f = unsafe { libc::dlsym(h, c"plugin_run".as_ptr()) };
    if f.is_null() {
        return Err(format!("{} has no plugin_run", path.display()));
    }
    // SAFETY: the examples' plugins export `plugin_run` with exactly this signature.
    Ok(Plugin {
        run: unsafe { std::mem::transmute::<*mut libc::c_void, PluginRun>(f) },
    })
}

impl Plugin {
    fn call(&self, url: &str) -> Result<u64, String> {
        let url = CString::new(url).map_err(|_| "NUL in the URL".to_string())?;
        let mut err = [0 as c_char; 512];
        // SAFETY: valid C string, and an error buffer of the length we pass.
        let n = unsafe { (self.run)(url.as_ptr(), err.as_mut_ptr(), err.len()) };
        if n < 0 {
            // SAFETY: the plugin NUL-terminates `err` within its length (we zeroed it too).
            let msg = unsafe { CStr::from_ptr(err.as_ptr()) };
            return Err(msg.to_string_lossy().into_owned());
        }
        Ok(n as u64)
    }
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn print_table(me: &ProcessReport, plugins: &[(&str, Option<u64>)]) {
    println!(
        "{:<8} {:<26} {:<22} {:>10} {:>10}  {:>10} {:>10}",
        "plugin", "module", "via", "sent", "received", "label sent", "label recv"
    );
    for (name, _) in plugins {
        let sock = me
            .sockets
            .iter()
            .find(|s| s.label.as_deref() == Some(*name) && s.is_connection());
        let module = sock.and_then(|s| s.module.clone()).unwrap_or_default();
        let via = sock.and_then(|s| s.via.clone()).unwrap_or_else(|| "-".into());
        let m = me.modules.iter().find(|m| m.module == module);
        let l = me.labels.iter().find(|l| l.label == *name);
        println!(
            "{:<8} {:<26} {:<22} {:>10} {:>10}  {:>10} {:>10}",
            name,
            if module.is_empty() { "(none)" } else { base(&module) },
            base(&via),
            m.map_or(0, |m| m.stats.tx_bytes),
            m.map_or(0, |m| m.stats.rx_bytes),
            l.map_or(0, |l| l.stats.tx_bytes),
            l.map_or(0, |l| l.stats.rx_bytes),
        );
    }
    println!(
        "{:<8} {:<26} {:<22} {:>10} {:>10}",
        "(total)", "this process", "", me.totals.tx_bytes, me.totals.rx_bytes
    );
    println!("modules:");
    for m in &me.modules {
        println!(
            "  {:<60} sent {:>8} received {:>8} connections {}",
            m.module, m.stats.tx_bytes, m.stats.rx_bytes, m.stats.connections
        );
    }
    for n in &me.notices {
        println!("notice: {n}");
    }
}

fn run(a: &Args) -> Result<bool, String> {
    let meter = sockmeter::embed::start()
        .map_err(|e| format!("{e} (this binary is built to need libsockmeter_shim.so; see examples/README.md)"))?;
    let version = shim_version();
    if version == "link-stub" {
        return Err("the link-time stand-in of the shim was loaded instead of the shim".into());
    }
    println!("sockmeter shim {version}, linked ahead of libc");
    let events = meter.subscribe().map_err(|e| e.to_string())?;

    let weather = match &a.weather {
        Some(p) => p.clone(),
        None => default_weather()?,
    };
    let stocks = match &a.stocks {
        Some(p) => p.clone(),
        None => default_stocks()?,
    };
    let jobs = [
        ("weather", weather, format!("http://127.0.0.1:{}/weather", a.port)),
        ("stocks", stocks, format!("tcp://127.0.0.1:{}/AAPL,MSFT,GOOG", a.port)),
    ];
    let mut ok = true;
    let mut results = Vec::new();
    for (name, path, url) in &jobs {
        let got = load(path).and_then(|p| sockmeter::embed::label(name, || p.call(url)));
        match &got {
            Ok(n) => println!("plugin {name:<8} {url} -> {n} bytes"),
            Err(e) => {
                eprintln!("sockmeter-rust-host: plugin {name}: {e}");
                ok = false;
            }
        }
        results.push((*name, got.ok()));
    }

    meter.flush(); // delivers every pending event to the subscription now
    let me = meter.snapshot().map_err(|e| e.to_string())?;
    let (mut all, mut sockets, mut deltas, mut closed, mut notices) = (0, 0, 0, 0, 0);
    for m in events.try_iter() {
        all += 1;
        match m {
            Message::Socket(s) => {
                sockets += 1;
                // A socket that opened and closed between two passes comes as one line.
                closed += usize::from(s.closed_at.is_some());
            }
            Message::Delta(_) => deltas += 1,
            Message::Closed(_) => closed += 1,
            Message::Notice(_) => notices += 1,
            _ => {}
        }
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&me).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    print_table(&me, &results);
    println!(
        "events seen by the subscriber: {all} (socket {sockets}, delta {deltas}, closed {closed}, notice {notices})"
    );
    Ok(ok)
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sockmeter-rust-host: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let code = match run(&a) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("sockmeter-rust-host: {e}");
            1
        }
    };
    std::process::exit(code);
}
