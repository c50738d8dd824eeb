//! baresip (Debian's package) as a phone in tests: a customer that answers and plays recorded
//! words, or an agent's phone that registers to callbot. baresip needs a non-loopback interface,
//! so tests run inside a network namespace they create ([`reexec_in_netns`]) with a veth pair on
//! 10.99.0.0/24; nothing leaves it.
#![allow(dead_code)] // each test file uses part of it

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// callbot's (and the phones') address inside the namespace.
pub const NS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

/// Outside the namespace: re-runs test `name` of this binary inside a new one and returns true
/// (the caller returns); inside: returns false (the caller runs the test).
pub fn reexec_in_netns(name: &str) -> bool {
    if std::env::var_os("CALLBOT_IN_NETNS").is_some() {
        return false;
    }
    let exe = std::env::current_exe().expect("test binary");
    let setup = format!(
        "ip link set lo up && ip link add cb0 type veth peer name cb1 && ip addr add {NS_ADDR}/24 dev cb0 && ip link set cb0 up && ip link set cb1 up && exec \"$0\" --exact {name} --nocapture --test-threads 1"
    );
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", &setup])
        .arg(&exe)
        .env("CALLBOT_IN_NETNS", "1")
        .status()
        .expect("unshare (util-linux) runs; the test needs root for a network namespace");
    assert!(status.success(), "the test inside the namespace failed");
    true
}

pub fn read_wav(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(r.spec().sample_rate, 8000, "{}", path.display());
    r.samples::<i16>().map(|s| s.expect("sample")).collect()
}

pub fn write_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for &s in samples {
        w.write_sample(s).expect("sample");
    }
    w.finalize().expect("wav");
}

/// Places `audio` at `at_s` seconds in `track`.
pub fn place(track: &mut Vec<i16>, at_s: f64, audio: &[i16]) {
    let at = (at_s * 8000.0) as usize;
    if track.len() < at + audio.len() {
        track.resize(at + audio.len(), 0);
    }
    track[at..at + audio.len()].copy_from_slice(audio);
}

/// A sine tone at 8 kHz.
pub fn tone(freq: f32, seconds: f64, amplitude: f32) -> Vec<i16> {
    (0..(seconds * 8000.0) as usize)
        .map(|i| (amplitude * (2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin()) as i16)
        .collect()
}

/// Seconds of `audio` (20 ms frames at 8 kHz) where `freq` clearly dominates: its Goertzel
/// power is over half the frame's energy and the frame is not quiet.
pub fn seconds_of_tone(audio: &[i16], freq: f32) -> f64 {
    use telephony::goertzel;
    let frames = audio
        .chunks(160)
        .filter(|f| {
            let e = goertzel::energy(f);
            e > 1e-4 && goertzel::power(f, 8000, freq) * 2.0 > 0.5 * e
        })
        .count();
    frames as f64 * 0.02
}

/// RMS of each 20 ms frame.
pub fn frame_rms(audio: &[i16]) -> Vec<f64> {
    audio
        .chunks(160)
        .map(|f| {
            (f.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / f.len() as f64).sqrt()
        })
        .collect()
}

/// How a baresip instance is set up.
pub struct Phone<'a> {
    /// Port it listens on (at [`NS_ADDR`]).
    pub port: u16,
    /// Its `accounts` line.
    pub account: String,
    /// What its microphone plays (baresip hangs up when the file ends).
    pub mic: &'a [i16],
}

pub struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
}

impl Baresip {
    /// The customer's phone: answers automatically on port 5080 and plays `mic`, padded so
    /// that it outlasts the call.
    pub fn customer(mic: &[i16]) -> Baresip {
        let mut padded = mic.to_vec();
        padded.resize(padded.len() + 8000 * 60, 0);
        Baresip::start(&Phone {
            port: 5080,
            account: format!("<sip:b@{NS_ADDR}:5080>;regint=0;answermode=auto;audio_codecs=PCMU"),
            mic: &padded,
        })
    }

    pub fn start(phone: &Phone) -> Baresip {
        let dir = tempfile::tempdir().expect("tempdir");
        let mic_path = dir.path().join("mic.wav");
        write_wav(&mic_path, phone.mic);
        std::fs::write(
            dir.path().join("config"),
            format!(
                "module_path /usr/lib/baresip/modules\nsip_listen {NS_ADDR}:{}\naudio_source aufile,{}\naudio_player alsa,null\naudio_alert alsa,null\nausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\nmodule g711.so\nmodule alsa.so\nmodule aufile.so\nmodule sndfile.so\nsnd_path {}\nmodule_app account.so\nmodule_app contact.so\nmodule_app menu.so\n",
                phone.port,
                mic_path.display(),
                dir.path().display()
            ),
        )
        .expect("config");
        std::fs::write(dir.path().join("accounts"), format!("{}\n", phone.account))
            .expect("accounts");
        std::fs::write(dir.path().join("contacts"), "").expect("contacts");
        // baresip 1.0's only sound-card-free player (ALSA's null PCM) never blocks, so its
        // player threads spin on both cores. On a real line the phone is not on callbot's CPU:
        // `nice` keeps the spinning from starving callbot's recogniser (baresip's sending thread
        // sleeps between packets, so its timing is unaffected).
        let child = Command::new("nice")
            .args(["-n", "19", "baresip", "-4", "-f"])
            .arg(dir.path())
            .args(["-t", "150"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("baresip is installed (.ci/setup installs it)");
        Baresip { child, dir }
    }

    /// Stops baresip and returns (what it sent, what it heard) in its first call.
    pub fn finish(mut self) -> (Vec<i16>, Vec<i16>) {
        std::thread::sleep(Duration::from_millis(1000));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let find = |suffix: &str| -> PathBuf {
            std::fs::read_dir(self.dir.path())
                .expect("dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.to_string_lossy().ends_with(suffix))
                .unwrap_or_else(|| panic!("baresip wrote no *{suffix} (sndfile)"))
        };
        (read_wav(&find("-enc.wav")), read_wav(&find("-dec.wav")))
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
