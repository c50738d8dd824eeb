//! Listen-in: a supervisor hears a live call, the customer and the agent mixed.
//!
//! Every connected call's agent leg runs through a [`tap`]: it forwards frames both ways as
//! they are, and sends each listener the sum of the customer's and the agent's frame of the
//! same 20 ms. The two streams tick independently, so the customer's frames wait in a short
//! queue for the agent's; when the agent's side stalls (a muted phone sends nothing) they go
//! out alone after three frames. Listeners only hear: what their own leg sends is discarded.

use std::collections::VecDeque;

use tokio::sync::mpsc;

use super::desk::ConnectedLeg;

/// Frames each way (2 s), as the desk's legs.
const BUFFER: usize = 100;
/// Customer frames waiting for the agent's before they are sent to listeners alone.
const MAX_PENDING: usize = 3;

/// Interposes a tap on an agent's leg: returns the leg the call uses and the channel that adds
/// listeners (their legs end when the call ends).
pub(crate) fn tap(leg: ConnectedLeg) -> (ConnectedLeg, mpsc::UnboundedSender<ConnectedLeg>) {
    let (to_tx, mut to_rx) = mpsc::channel::<Vec<i16>>(BUFFER);
    let (from_tx, from_rx) = mpsc::channel::<Vec<i16>>(BUFFER);
    let (add_tx, mut add_rx) = mpsc::unbounded_channel::<ConnectedLeg>();
    let ConnectedLeg {
        mut from_agent,
        to_agent,
    } = leg;
    tokio::spawn(async move {
        let mut listeners: Vec<mpsc::Sender<Vec<i16>>> = Vec::new();
        let mut pending: VecDeque<Vec<i16>> = VecDeque::new();
        loop {
            tokio::select! {
                added = add_rx.recv() => {
                    if let Some(ConnectedLeg { mut from_agent, to_agent }) = added {
                        // What the listener's own microphone sends is not heard by anyone.
                        tokio::spawn(async move { while from_agent.recv().await.is_some() {} });
                        listeners.push(to_agent);
                    }
                }
                pcm = to_rx.recv() => match pcm {
                    Some(pcm) => {
                        if !listeners.is_empty() {
                            pending.push_back(pcm.clone());
                            if pending.len() > MAX_PENDING
                                && let Some(alone) = pending.pop_front()
                            {
                                send_all(&mut listeners, alone);
                            }
                        }
                        let _ = to_agent.try_send(pcm);
                    }
                    None => break,
                },
                frame = from_agent.recv() => match frame {
                    Some(frame) => {
                        if !listeners.is_empty() {
                            let mixed = match pending.pop_front() {
                                Some(customer) => mix(&customer, &frame),
                                None => frame.clone(),
                            };
                            send_all(&mut listeners, mixed);
                        }
                        if from_tx.try_send(frame).is_err() && from_tx.is_closed() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        // Dropping `to_agent`, `from_tx` and the listeners' senders ends every leg.
    });
    (
        ConnectedLeg {
            from_agent: from_rx,
            to_agent: to_tx,
        },
        add_tx,
    )
}

fn send_all(listeners: &mut Vec<mpsc::Sender<Vec<i16>>>, frame: Vec<i16>) {
    listeners.retain(|l| !l.is_closed());
    for l in listeners.iter() {
        // A listener that falls behind loses frames, never the call.
        let _ = l.try_send(frame.clone());
    }
}

/// The two frames summed, sample by sample, saturating (the longer one's tail as it is).
fn mix(a: &[i16], b: &[i16]) -> Vec<i16> {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    long.iter()
        .enumerate()
        .map(|(i, &x)| x.saturating_add(short.get(i).copied().unwrap_or(0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg() -> (
        ConnectedLeg,
        mpsc::Sender<Vec<i16>>,
        mpsc::Receiver<Vec<i16>>,
    ) {
        let (from_tx, from_rx) = mpsc::channel(BUFFER);
        let (to_tx, to_rx) = mpsc::channel(BUFFER);
        (
            ConnectedLeg {
                from_agent: from_rx,
                to_agent: to_tx,
            },
            from_tx,
            to_rx,
        )
    }

    #[test]
    fn mixing_saturates_and_keeps_the_longer_tail() {
        assert_eq!(mix(&[1, 2, 3], &[10, 20]), vec![11, 22, 3]);
        assert_eq!(
            mix(&[i16::MAX, i16::MIN], &[5, -5]),
            vec![i16::MAX, i16::MIN]
        );
    }

    #[tokio::test]
    async fn listeners_hear_both_sides_and_the_call_is_untouched() {
        // The agent's leg as the desk has it: frames from the agent, frames to the agent.
        let (agent_leg, agent_mic, mut agent_ear) = leg();
        let (mut call_side, add) = tap(agent_leg);

        // Before anyone listens: frames pass both ways unchanged.
        call_side
            .to_agent
            .send(vec![100; 160])
            .await
            .expect("to agent");
        assert_eq!(agent_ear.recv().await, Some(vec![100; 160]));
        agent_mic.send(vec![7; 160]).await.expect("from agent");
        assert_eq!(call_side.from_agent.recv().await, Some(vec![7; 160]));

        // A supervisor listens: a customer frame and the agent's frame of the same 20 ms
        // come out summed; the supervisor's own microphone goes nowhere.
        let (supervisor, supervisor_mic, mut supervisor_ear) = leg();
        add.send(supervisor).expect("add listener");
        tokio::task::yield_now().await;
        supervisor_mic.send(vec![999; 160]).await.expect("drained");
        call_side
            .to_agent
            .send(vec![1000; 160])
            .await
            .expect("to agent");
        assert_eq!(agent_ear.recv().await, Some(vec![1000; 160]));
        agent_mic.send(vec![2000; 160]).await.expect("from agent");
        assert_eq!(call_side.from_agent.recv().await, Some(vec![2000; 160]));
        assert_eq!(supervisor_ear.recv().await, Some(vec![3000; 160]));

        // The agent's side stalls: after a few frames the customer is heard alone.
        for _ in 0..=MAX_PENDING {
            call_side
                .to_agent
                .send(vec![50; 160])
                .await
                .expect("to agent");
        }
        assert_eq!(supervisor_ear.recv().await, Some(vec![50; 160]));

        // The call ends (the customer hangs up): the agent's and the supervisor's legs end.
        drop(call_side);
        while agent_ear.recv().await.is_some() {}
        while supervisor_ear.recv().await.is_some() {}
    }
}
