//! The console's softphone: a browser's WebRTC leg ([`telephony::webrtc_leg`]) as the desk's
//! [`ConnectedLeg`]. One task pumps 20 ms frames each way; it ends — closing the WebRTC leg —
//! when the desk drops its side (the customer hung up, the agent hung up from the console), and
//! the desk hears the end when the browser's leg closes or fails.

use telephony::webrtc_leg::WebRtcLeg;
use tokio::sync::mpsc;

use super::desk::ConnectedLeg;

/// Frames buffered each way (2 s), as the desk's own legs.
const BUFFER: usize = 100;

/// Wraps an answered WebRTC leg for [`super::desk::Desk::accept`]. Audio for the agent waits in
/// the leg until ICE and DTLS are up.
pub fn connected_leg(mut leg: WebRtcLeg) -> ConnectedLeg {
    let (to_tx, mut to_rx) = mpsc::channel::<Vec<i16>>(BUFFER);
    let (from_tx, from_rx) = mpsc::channel::<Vec<i16>>(BUFFER);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                pcm = to_rx.recv() => match pcm {
                    // A full queue in the leg drops the frame (a stalled browser must not
                    // stall the customer's call).
                    Some(pcm) => {
                        if let Err(telephony::webrtc_leg::WebRtcError::Closed) = leg.try_send_audio(pcm) {
                            break;
                        }
                    }
                    None => break,
                },
                frame = leg.next_frame() => match frame {
                    Some(frame) => {
                        if from_tx.try_send(frame.samples).is_err() && from_tx.is_closed() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        leg.close().await;
    });
    ConnectedLeg {
        from_agent: from_rx,
        to_agent: to_tx,
    }
}
