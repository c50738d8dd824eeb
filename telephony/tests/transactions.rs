//! The RFC 3261 transaction state machines with simulated time: retransmission schedules, lost
//! responses, timeouts, ACKs. No sockets, no sleeps.

use std::time::{Duration, Instant};

use telephony::sip::transaction::{
    ClientState, ClientTransaction, ServerState, ServerTransaction, TimerConfig, TxOutput,
};
use telephony::sip::{self, Framing, Message, Request, Response};

fn request(method: &str) -> Request {
    let text = format!(
        "{method} sip:bob@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtest1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: call-1@127.0.0.1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    match sip::parse(text.as_bytes(), Framing::Datagram) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn response(req: &Request, status: u16) -> Response {
    req.response(status, "Reason", Some("b1"))
}

fn sends(out: &[TxOutput]) -> usize {
    out.iter()
        .filter(|o| matches!(o, TxOutput::SendRequest(_) | TxOutput::SendResponse(_)))
        .count()
}

/// Advance time in 10 ms steps to `until`, recording when something was (re)sent.
fn run_client(
    tx: &mut ClientTransaction,
    start: Instant,
    until: Duration,
) -> (Vec<Duration>, Vec<TxOutput>) {
    let mut times = Vec::new();
    let mut all = Vec::new();
    let mut t = start;
    while t <= start + until {
        let out = tx.on_timer(t);
        if sends(&out) > 0 {
            times.push(t - start);
        }
        all.extend(out);
        t += Duration::from_millis(10);
    }
    (times, all)
}

fn ms(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|&m| Duration::from_millis(m)).collect()
}

#[test]
fn client_invite_retransmits_with_timer_a_and_times_out_with_timer_b() {
    let now = Instant::now();
    let (mut tx, first) =
        ClientTransaction::new(request("INVITE"), false, TimerConfig::default(), now);
    assert_eq!(sends(&first), 1);
    let (times, out) = run_client(&mut tx, now, Duration::from_secs(40));
    // A doubles from T1: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; B fires at 64*T1 = 32 s.
    assert_eq!(times, ms(&[500, 1500, 3500, 7500, 15500, 31500]));
    assert!(out.contains(&TxOutput::Timeout));
    assert!(tx.is_terminated());
}

#[test]
fn client_invite_provisional_stops_retransmission_and_non_2xx_is_acked() {
    let now = Instant::now();
    let req = request("INVITE");
    let (mut tx, _) = ClientTransaction::new(req.clone(), false, TimerConfig::default(), now);
    let out = tx.on_response(response(&req, 180), now + Duration::from_millis(100));
    assert!(matches!(out.as_slice(), [TxOutput::Response(r)] if r.status == 180));
    assert_eq!(tx.state(), ClientState::Proceeding);
    let (times, _) = run_client(&mut tx, now, Duration::from_secs(60));
    assert!(
        times.is_empty(),
        "no retransmission after a provisional, and no Timer B"
    );
    let t = now + Duration::from_secs(61);
    let out = tx.on_response(response(&req, 486), t);
    let ack = out
        .iter()
        .find_map(|o| match o {
            TxOutput::SendRequest(r) => Some(r.clone()),
            _ => None,
        })
        .expect("ACK sent");
    assert_eq!(ack.method, sip::Method::Ack);
    assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
    assert!(
        ack.headers
            .get("To")
            .is_some_and(|to| to.contains("tag=b1"))
    );
    assert_eq!(
        ack.top_via()
            .and_then(|v| v.branch().map(str::to_string))
            .as_deref(),
        Some("z9hG4bKtest1")
    );
    // The 486 is retransmitted (our ACK was lost): ACK again, nothing for the TU.
    let out = tx.on_response(response(&req, 486), t + Duration::from_secs(1));
    assert!(matches!(out.as_slice(), [TxOutput::SendRequest(r)] if r.method == sip::Method::Ack));
    // Timer D: 32 s on UDP.
    assert!(tx.on_timer(t + Duration::from_secs(31)).is_empty());
    assert_eq!(
        tx.on_timer(t + Duration::from_secs(32)),
        vec![TxOutput::Terminated]
    );
}

#[test]
fn client_invite_2xx_goes_to_the_tu_including_retransmissions() {
    let now = Instant::now();
    let req = request("INVITE");
    let (mut tx, _) = ClientTransaction::new(req.clone(), false, TimerConfig::default(), now);
    let out = tx.on_response(response(&req, 200), now);
    assert!(matches!(out.as_slice(), [TxOutput::Response(r)] if r.status == 200));
    assert_eq!(tx.state(), ClientState::Accepted);
    // The TU ACKs 2xx itself, so a retransmitted 200 must reach it again (RFC 6026).
    let out = tx.on_response(response(&req, 200), now + Duration::from_millis(500));
    assert!(matches!(out.as_slice(), [TxOutput::Response(r)] if r.status == 200));
    assert_eq!(
        tx.on_timer(now + Duration::from_secs(32)),
        vec![TxOutput::Terminated]
    );
}

#[test]
fn client_over_a_reliable_transport_never_retransmits() {
    let now = Instant::now();
    let req = request("INVITE");
    let (mut tx, _) = ClientTransaction::new(req.clone(), true, TimerConfig::default(), now);
    let (times, out) = run_client(&mut tx, now, Duration::from_secs(33));
    assert!(times.is_empty());
    assert!(out.contains(&TxOutput::Timeout), "Timer B still applies");
    let (mut tx, _) = ClientTransaction::new(req.clone(), true, TimerConfig::default(), now);
    let out = tx.on_response(response(&req, 404), now);
    assert!(
        out.contains(&TxOutput::Terminated),
        "Timer D is zero on TCP"
    );
}

#[test]
fn client_non_invite_caps_timer_e_at_t2_and_times_out_with_f() {
    let now = Instant::now();
    let (mut tx, _) =
        ClientTransaction::new(request("OPTIONS"), false, TimerConfig::default(), now);
    let (times, out) = run_client(&mut tx, now, Duration::from_secs(33));
    // 0.5, 1.5, 3.5, 7.5, then every 4 s (T2) until F at 32 s.
    assert_eq!(
        times,
        ms(&[
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ])
    );
    assert!(out.contains(&TxOutput::Timeout));
}

#[test]
fn client_non_invite_after_a_provisional_retransmits_every_t2() {
    let now = Instant::now();
    let req = request("BYE");
    let (mut tx, _) = ClientTransaction::new(req.clone(), false, TimerConfig::default(), now);
    tx.on_response(response(&req, 100), now + Duration::from_millis(10));
    let (times, _) = run_client(&mut tx, now, Duration::from_secs(12));
    assert_eq!(times, ms(&[500, 4500, 8500]));
    let out = tx.on_response(response(&req, 200), now + Duration::from_secs(12));
    assert!(matches!(out.as_slice(), [TxOutput::Response(r)] if r.status == 200));
    assert_eq!(tx.state(), ClientState::Completed);
    // Timer K = T4.
    assert!(tx.on_timer(now + Duration::from_secs(16)).is_empty());
    assert_eq!(
        tx.on_timer(now + Duration::from_secs(17)),
        vec![TxOutput::Terminated]
    );
}

#[test]
fn server_invite_retransmits_a_final_error_until_acked() {
    let now = Instant::now();
    let req = request("INVITE");
    let mut tx = ServerTransaction::new(req.clone(), false, TimerConfig::default());
    assert_eq!(sends(&tx.respond(response(&req, 180), now)), 1);
    // A retransmitted INVITE gets the last provisional again.
    assert_eq!(
        sends(&tx.on_request(&req, now + Duration::from_millis(300))),
        1
    );
    assert_eq!(sends(&tx.respond(response(&req, 486), now)), 1);
    let mut times = Vec::new();
    let mut t = now;
    while t <= now + Duration::from_secs(10) {
        if sends(&tx.on_timer(t)) > 0 {
            times.push(t - now);
        }
        t += Duration::from_millis(10);
    }
    // Timer G: 0.5, 1.5, 3.5, 7.5 (capped at T2 = 4 s).
    assert_eq!(times, ms(&[500, 1500, 3500, 7500]));
    let ack = sip::transaction::ack_for_non_2xx(&req, &response(&req, 486));
    let out = tx.on_request(&ack, now + Duration::from_secs(10));
    assert_eq!(out, vec![TxOutput::Acked]);
    assert_eq!(tx.state(), ServerState::Confirmed);
    // Timer I = T4, absorbing ACK retransmissions.
    assert!(
        tx.on_request(&ack, now + Duration::from_secs(11))
            .is_empty()
    );
    assert_eq!(
        tx.on_timer(now + Duration::from_secs(15)),
        vec![TxOutput::Terminated]
    );
}

#[test]
fn server_invite_without_ack_times_out_with_timer_h() {
    let now = Instant::now();
    let req = request("INVITE");
    let mut tx = ServerTransaction::new(req.clone(), false, TimerConfig::default());
    tx.respond(response(&req, 603), now);
    let out = tx.on_timer(now + Duration::from_secs(32));
    assert!(out.contains(&TxOutput::Timeout));
    assert!(tx.is_terminated());
}

#[test]
fn server_invite_2xx_is_retransmitted_until_the_ack() {
    let now = Instant::now();
    let req = request("INVITE");
    let mut tx = ServerTransaction::new(req.clone(), false, TimerConfig::default());
    tx.respond(response(&req, 200), now);
    assert_eq!(tx.state(), ServerState::Accepted);
    assert_eq!(sends(&tx.on_timer(now + Duration::from_millis(500))), 1);
    assert_eq!(sends(&tx.on_timer(now + Duration::from_millis(1500))), 1);
    let ack = request("ACK");
    assert_eq!(
        tx.on_request(&ack, now + Duration::from_secs(2)),
        vec![TxOutput::Acked]
    );
    assert_eq!(
        sends(&tx.on_timer(now + Duration::from_millis(3500))),
        0,
        "no retransmission after the ACK"
    );
}

#[test]
fn server_non_invite_answers_retransmissions_and_waits_timer_j() {
    let now = Instant::now();
    let req = request("OPTIONS");
    let mut tx = ServerTransaction::new(req.clone(), false, TimerConfig::default());
    assert!(
        tx.on_request(&req, now).is_empty(),
        "nothing to resend before a response"
    );
    tx.respond(response(&req, 200), now);
    assert_eq!(tx.state(), ServerState::Completed);
    let out = tx.on_request(&req, now + Duration::from_secs(1));
    assert!(matches!(out.as_slice(), [TxOutput::SendResponse(r)] if r.status == 200));
    assert!(tx.on_timer(now + Duration::from_secs(31)).is_empty());
    assert_eq!(
        tx.on_timer(now + Duration::from_secs(32)),
        vec![TxOutput::Terminated]
    );
    // Over TCP, Timer J is zero.
    let mut tx = ServerTransaction::new(req.clone(), true, TimerConfig::default());
    assert!(
        tx.respond(response(&req, 200), now)
            .contains(&TxOutput::Terminated)
    );
}

#[test]
fn a_lossy_exchange_still_completes() {
    // The first two INVITEs and the first 180 are lost; the third INVITE gets through.
    let now = Instant::now();
    let req = request("INVITE");
    let (mut client, _) = ClientTransaction::new(req.clone(), false, TimerConfig::default(), now);
    let mut server: Option<ServerTransaction> = None;
    let mut t = now;
    let mut delivered_invites = 0;
    let mut got_final = false;
    let mut invites_sent = 1;
    while t < now + Duration::from_secs(10) && !got_final {
        t += Duration::from_millis(10);
        for o in client.on_timer(t) {
            if let TxOutput::SendRequest(r) = o {
                invites_sent += 1;
                if invites_sent >= 3 {
                    delivered_invites += 1;
                    let srv = server.get_or_insert_with(|| {
                        ServerTransaction::new(r.clone(), false, TimerConfig::default())
                    });
                    if delivered_invites == 1 {
                        srv.respond(response(&req, 180), t); // lost
                        for o in srv.respond(response(&req, 486), t) {
                            if let TxOutput::SendResponse(resp) = o {
                                for c in client.on_response(resp, t) {
                                    if matches!(c, TxOutput::Response(ref r) if r.status == 486) {
                                        got_final = true;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(got_final);
    assert_eq!(invites_sent, 3, "retransmitted twice before it got through");
    assert_eq!(client.state(), ClientState::Completed);
}
