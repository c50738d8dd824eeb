//! The agent softphone leg against a real browser: Debian's headless Chromium, driven through
//! chromedriver (WebDriver), answers through `telephony::webrtc_leg` on loopback. Audio goes both
//! ways: a 440 Hz tone from the server is heard by the page's WebAudio analyser, the fake
//! microphone's 1000 Hz tone is heard by the server.
//!
//! Chromium and chromedriver are required (see `support/chromium.rs`).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::json;
use telephony::goertzel;
use telephony::webrtc_leg::{LegState, WebRtcConfig, WebRtcError, WebRtcLeg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[path = "support/chromium.rs"]
mod chromium;

use chromium::{WAIT, call_page, start_browser};

const PAGE: &str = include_str!("web/softphone.html");

fn tone_8k(freq: f32, seconds: f32, amplitude: f32) -> Vec<i16> {
    (0..(8000.0 * seconds) as usize)
        .map(|n| {
            let phase = 2.0 * std::f32::consts::PI * freq * n as f32 / 8000.0;
            (phase.sin() * amplitude) as i16
        })
        .collect()
}

/// The frequency, on a 10 Hz grid over the telephone band, with the most power.
fn dominant_frequency(samples: &[i16]) -> f32 {
    (30..=340)
        .map(|step| step as f32 * 10.0)
        .map(|f| (f, goertzel::power(samples, 8000, f)))
        .fold(
            (0.0, f32::MIN),
            |best, cur| if cur.1 > best.1 { cur } else { best },
        )
        .0
}

/// Serve the one test page to whoever asks, on loopback.
async fn serve_page() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind the page server");
    let addr = listener.local_addr().expect("page server address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 2048];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, body) = if request.starts_with(b"GET / ") {
                    ("200 OK", PAGE)
                } else {
                    ("404 Not Found", "")
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_softphone_hears_and_is_heard() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "telephony=info".into()),
        )
        .with_test_writer()
        .try_init();
    let begun = Instant::now();

    // A garbage offer is refused with an error that says what is wrong.
    let err = WebRtcLeg::answer("v=0\r\nthis is no offer", &WebRtcConfig::default())
        .await
        .expect_err("garbage offer refused");
    assert!(matches!(err, WebRtcError::BadOffer(_)), "{err:?}");

    let workdir = tempfile::tempdir().expect("temp dir");
    let (_driver, client) = start_browser(workdir.path(), 1000.0).await;
    let page = serve_page().await;
    tokio::time::timeout(WAIT, client.goto(&format!("http://{page}/")))
        .await
        .expect("page load within 60 s")
        .expect("load the softphone page");

    let offer = call_page(&client, "makeOffer()", vec![]).await;
    let offer = offer.as_str().expect("offer SDP is a string");
    assert!(
        offer.contains("PCMU/8000"),
        "Chromium offers PCMU:\n{offer}"
    );

    let (mut leg, answer) =
        tokio::time::timeout(WAIT, WebRtcLeg::answer(offer, &WebRtcConfig::default()))
            .await
            .expect("answer within 60 s")
            .expect("answer the browser's offer");
    assert!(
        answer.contains("a=rtpmap:0 PCMU/8000"),
        "answer selects PCMU:\n{answer}"
    );
    assert!(
        !answer.contains("opus"),
        "answer carries no other codec:\n{answer}"
    );
    assert!(
        answer.contains("127.0.0.1"),
        "answer holds the loopback candidate:\n{answer}"
    );
    call_page(&client, "acceptAnswer(arguments[0])", vec![json!(answer)]).await;

    leg.connected(WAIT).await.expect("ICE + DTLS connected");
    assert_eq!(leg.state(), LegState::Connected);
    let connected_after = begun.elapsed();

    // Server → browser: a 440 Hz tone, heard by the page's analyser.
    leg.send_audio(tone_8k(440.0, 30.0, 10_000.0))
        .await
        .expect("queue the tone");
    let heard = tokio::time::timeout(WAIT, async {
        loop {
            let probe = client
                .execute("return probe();", vec![])
                .await
                .expect("probe the page");
            let freq = probe["freq"].as_f64().unwrap_or(0.0);
            let db = probe["db"].as_f64().unwrap_or(-999.0);
            let bin = probe["binHz"].as_f64().unwrap_or(0.0);
            if db > -70.0 && bin > 0.0 && (freq - 440.0).abs() <= 2.0 * bin {
                return probe;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let probe = match heard {
        Ok(probe) => probe,
        Err(_) => {
            let last = client.execute("return probe();", vec![]).await.ok();
            panic!("the page never heard 440 Hz within 60 s; last probe: {last:?}");
        }
    };
    eprintln!("page hears {probe}");
    leg.clear_audio().expect("clear the tone");

    // Browser → server: the fake microphone's 1000 Hz tone.
    let mut pcm = Vec::new();
    tokio::time::timeout(WAIT, async {
        // Skip the first half second (Chromium's capture warming up), then take one second.
        let mut skipped = 0;
        while pcm.len() < 8000 {
            let frame = leg.next_frame().await.expect("a frame from the browser");
            assert_eq!(frame.samples.len(), 160);
            if skipped < 25 {
                skipped += 1;
                continue;
            }
            pcm.extend_from_slice(&frame.samples);
        }
    })
    .await
    .expect("a second of browser audio within 60 s");
    let dominant = dominant_frequency(&pcm);
    let level = goertzel::energy(&pcm);
    eprintln!("server hears {dominant} Hz, energy {level}");
    assert!(
        (dominant - 1000.0).abs() <= 20.0,
        "server heard {dominant} Hz, not 1000 Hz"
    );
    assert!(
        level > 1e-4,
        "the browser's tone is too quiet: energy {level}"
    );

    // Hanging up ends the frame stream and further sends.
    leg.close().await;
    assert_eq!(leg.state(), LegState::Closed);
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while leg.next_frame().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "next_frame ends with None after close");
    assert!(matches!(
        leg.send_audio(vec![0; 160]).await,
        Err(WebRtcError::Closed)
    ));

    // The agent hangs up in the browser: the leg notices (DTLS close, or at worst ICE failing
    // after the short timeouts set here) and its frame stream ends.
    let cfg = WebRtcConfig {
        ice_disconnected_timeout: Duration::from_secs(2),
        ice_failed_timeout: Duration::from_secs(3),
        ..WebRtcConfig::default()
    };
    let offer = call_page(&client, "makeOffer()", vec![]).await;
    let offer = offer.as_str().expect("second offer SDP is a string");
    let (mut leg, answer) = tokio::time::timeout(WAIT, WebRtcLeg::answer(offer, &cfg))
        .await
        .expect("second answer within 60 s")
        .expect("answer the second offer");
    call_page(&client, "acceptAnswer(arguments[0])", vec![json!(answer)]).await;
    leg.connected(WAIT).await.expect("second call connected");
    let hung_up = Instant::now();
    client
        .execute("hangUp();", vec![])
        .await
        .expect("hang up in the page");
    tokio::time::timeout(WAIT, async { while leg.next_frame().await.is_some() {} })
        .await
        .expect("next_frame ends after the browser hangs up");
    assert!(
        leg.state().is_terminal(),
        "state after browser hang-up: {}",
        leg.state()
    );
    eprintln!(
        "browser hang-up seen as {} after {:.1} s",
        leg.state(),
        hung_up.elapsed().as_secs_f32()
    );

    let _ = client.close().await;
    eprintln!(
        "connected after {:.1} s, whole test {:.1} s",
        connected_after.as_secs_f32(),
        begun.elapsed().as_secs_f32()
    );
}
