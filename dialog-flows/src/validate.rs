//! Static checks that make a flow safe to put in front of customers: every step reachable and able
//! to finish, no loop that never listens, no slot or variable read before it can be set, every
//! template name provided by the lead schema, and the compliance proof — on every path, each
//! mandatory disclosure is spoken before any other content.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use crate::ast::*;
use crate::decode::{suggest, targets};
use crate::error::{Diagnostic, Pos};
use crate::expr::Expression;
use crate::template::Template;

/// A node of the analysis graph: a step, or the virtual entry of the global handlers.
const HANDLER_ENTRY: usize = usize::MAX;

struct Graph<'f> {
    flow: &'f Flow,
    /// Successors per step: (target step, the slot/var names set on that edge).
    succ: Vec<Vec<(usize, Vec<String>)>>,
    handler_targets: Vec<usize>,
    /// Steps that return to the interrupted question (`resume`).
    resumes: Vec<bool>,
}

impl<'f> Graph<'f> {
    fn new(flow: &'f Flow) -> Self {
        let n = flow.steps.len();
        let mut succ = vec![Vec::new(); n];
        let mut resumes = vec![false; n];
        for (i, s) in flow.steps.iter().enumerate() {
            for t in targets(&s.action) {
                if t.is_resume() {
                    resumes[i] = true;
                    continue;
                }
                let Some(j) = t.step else { continue };
                let facts = match &s.action {
                    Action::Ask(a) if a.next.as_ref().is_some_and(|x| std::ptr::eq(x, t)) => a
                        .slot
                        .iter()
                        .map(|sl| format!("slots.{}", sl.name))
                        .collect(),
                    Action::Set { assign, .. } => {
                        assign.iter().map(|(n, _, _)| format!("vars.{n}")).collect()
                    }
                    Action::Webhook(w) if std::ptr::eq(&w.next, t) => {
                        w.save_as.iter().map(|n| format!("vars.{n}")).collect()
                    }
                    _ => Vec::new(),
                };
                succ[i].push((j, facts));
            }
        }
        let handler_targets = flow.handlers.values().filter_map(|t| t.step).collect();
        Graph {
            flow,
            succ,
            handler_targets,
            resumes,
        }
    }

    fn is_ask(&self, i: usize) -> bool {
        matches!(self.flow.steps[i].action, Action::Ask(_))
    }

    /// Successors including handler entries from listening steps.
    fn next_all(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self.succ[i].iter().map(|(j, _)| *j).collect();
        if self.is_ask(i) {
            v.extend(self.handler_targets.iter().copied());
        }
        v
    }

    fn reachable(&self, from: usize, with_handlers: bool) -> Vec<bool> {
        let mut seen = vec![false; self.flow.steps.len()];
        let mut q = VecDeque::from([from]);
        seen[from] = true;
        while let Some(i) = q.pop_front() {
            let next = if with_handlers {
                self.next_all(i)
            } else {
                self.succ[i].iter().map(|(j, _)| *j).collect()
            };
            for j in next {
                if !seen[j] {
                    seen[j] = true;
                    q.push_back(j);
                }
            }
        }
        seen
    }

    /// A shortest path from `from` to `to` through steps that satisfy `through` (endpoints
    /// excepted), as step names.
    fn witness(
        &self,
        from: usize,
        to: usize,
        through: &dyn Fn(usize) -> bool,
    ) -> Option<Vec<String>> {
        let n = self.flow.steps.len();
        let mut parent = vec![usize::MAX; n];
        let mut seen = vec![false; n];
        seen[from] = true;
        let mut q = VecDeque::from([from]);
        while let Some(i) = q.pop_front() {
            if i == to {
                let mut path = vec![i];
                let mut c = i;
                while parent[c] != usize::MAX {
                    c = parent[c];
                    path.push(c);
                }
                path.reverse();
                return Some(
                    path.into_iter()
                        .map(|i| self.flow.steps[i].name.clone())
                        .collect(),
                );
            }
            if i != from && !through(i) {
                continue;
            }
            for j in self.next_all(i) {
                if !seen[j] {
                    seen[j] = true;
                    parent[j] = i;
                    q.push_back(j);
                }
            }
        }
        None
    }
}

/// Forward "must" analysis: the set of facts true on every path into each step.
fn must_analysis(
    g: &Graph,
    start: usize,
    gen_at_step: &dyn Fn(usize) -> Vec<String>,
    use_edge_gen: bool,
) -> Vec<Option<BTreeSet<String>>> {
    let n = g.flow.steps.len();
    let mut inn: Vec<Option<BTreeSet<String>>> = vec![None; n];
    inn[start] = Some(BTreeSet::new());
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds < 10_000 {
        changed = false;
        rounds += 1;
        // The handler entry: what holds at every listening step.
        let mut entry: Option<BTreeSet<String>> = None;
        for (i, facts_in) in inn.iter().enumerate() {
            if g.is_ask(i)
                && let Some(s) = facts_in
            {
                let mut s = s.clone();
                s.extend(gen_at_step(i));
                entry = Some(match entry {
                    None => s,
                    Some(e) => e.intersection(&s).cloned().collect(),
                });
            }
        }
        let mut edges: Vec<(usize, usize, Vec<String>)> = Vec::new();
        for i in 0..n {
            for (j, facts) in &g.succ[i] {
                edges.push((
                    i,
                    *j,
                    if use_edge_gen {
                        facts.clone()
                    } else {
                        Vec::new()
                    },
                ));
            }
        }
        for (i, j, facts) in edges {
            let Some(src) = &inn[i] else { continue };
            let mut out = src.clone();
            out.extend(gen_at_step(i));
            out.extend(facts);
            let merged = match &inn[j] {
                None => out,
                Some(cur) => cur.intersection(&out).cloned().collect(),
            };
            if inn[j].as_ref() != Some(&merged) {
                inn[j] = Some(merged);
                changed = true;
            }
        }
        if let Some(entry) = entry {
            for &t in &g.handler_targets {
                let merged = match &inn[t] {
                    None => entry.clone(),
                    Some(cur) => cur.intersection(&entry).cloned().collect(),
                };
                if inn[t].as_ref() != Some(&merged) {
                    inn[t] = Some(merged);
                    changed = true;
                }
            }
        }
    }
    let _ = HANDLER_ENTRY;
    inn
}

/// Templates and expressions a step uses, with the slot its `confirm` may read.
fn uses(step: &Step) -> (Vec<&Template>, Vec<&Expression>, Option<&str>) {
    let mut t: Vec<&Template> = step.say.iter().collect();
    let mut e: Vec<&Expression> = Vec::new();
    let mut own = None;
    match &step.action {
        Action::Ask(a) => {
            t.push(&a.prompt);
            t.extend(a.no_match.reprompts.iter());
            t.extend(a.no_input.reprompts.iter());
            t.extend(a.invalid.iter());
            if let Some(s) = &a.slot {
                e.extend(s.min.iter());
                e.extend(s.max.iter());
            }
            own = a.slot.as_ref().map(|s| s.name.as_str());
        }
        Action::Branch { arms, .. } => e.extend(arms.iter().map(|(x, _)| x)),
        Action::Set { assign, .. } => e.extend(assign.iter().map(|(_, x, _)| x)),
        Action::Webhook(w) => {
            t.push(&w.url);
            t.extend(w.body.iter().map(|(_, x)| x));
        }
        Action::SendDtmf { digits, .. } => t.push(digits),
        Action::Transfer(tr) => {
            t.push(&tr.reason);
            t.extend(tr.script.iter());
        }
        Action::ColdTransfer(ct) => {
            t.push(&ct.to);
            t.push(&ct.reason);
        }
        Action::Callback { at, note, .. } => {
            e.push(at);
            t.extend(note.iter());
        }
        Action::Dnc { reason, .. } => t.push(reason),
        Action::Say { .. } | Action::End { .. } => {}
    }
    (t, e, own)
}

/// Run every check. An empty result means the flow may go live.
pub fn validate(flow: &Flow) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let Some(start) = flow.start.step else {
        return diags;
    };
    let g = Graph::new(flow);
    let n = flow.steps.len();

    // Reachability (handlers are entered from any reachable question).
    let reach = g.reachable(start, true);
    for (i, s) in flow.steps.iter().enumerate() {
        if !reach[i] && !s.inline {
            diags.push(Diagnostic::new(
                s.pos,
                "unreachable",
                format!(
                    "step `{}` can never run: no path from `start` or a handler leads to it",
                    s.name
                ),
            ));
        }
    }
    let any_ask = (0..n).any(|i| reach[i] && g.is_ask(i));
    if !any_ask {
        for (h, t) in &flow.handlers {
            diags.push(Diagnostic::new(
                t.pos,
                "unreachable",
                format!(
                    "handler `{}` can never run: the flow never listens to the caller",
                    h.name()
                ),
            ));
        }
    }

    // Dead ends: steps from which no path ends the call, transfers it or resumes a question.
    let mut can_finish: Vec<bool> = (0..n)
        .map(|i| {
            matches!(
                flow.steps[i].action,
                Action::End { .. } | Action::Transfer(_) | Action::ColdTransfer(_)
            ) || g.resumes[i]
        })
        .collect();
    loop {
        let mut changed = false;
        for i in 0..n {
            if !can_finish[i] && g.succ[i].iter().any(|(j, _)| can_finish[*j]) {
                can_finish[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for i in 0..n {
        if reach[i] && !can_finish[i] {
            let s = &flow.steps[i];
            diags.push(Diagnostic::new(s.pos, "dead-end", format!("from step `{}` no path ends the call or transfers it: the conversation would go round forever", s.name)));
        }
    }

    // Loops that never listen to the caller.
    let mut color = vec![0u8; n];
    fn dfs(
        g: &Graph,
        i: usize,
        color: &mut [u8],
        stack: &mut Vec<usize>,
        found: &mut Vec<Vec<usize>>,
    ) {
        color[i] = 1;
        stack.push(i);
        for (j, _) in &g.succ[i] {
            let j = *j;
            if g.is_ask(j) {
                continue;
            }
            if color[j] == 1 {
                if let Some(p) = stack.iter().position(|&x| x == j) {
                    found.push(stack[p..].to_vec());
                }
            } else if color[j] == 0 {
                dfs(g, j, color, stack, found);
            }
        }
        stack.pop();
        color[i] = 2;
    }
    let mut cycles = Vec::new();
    for i in 0..n {
        if color[i] == 0 && !g.is_ask(i) && reach[i] {
            dfs(&g, i, &mut color, &mut Vec::new(), &mut cycles);
        }
    }
    for c in cycles {
        let names: Vec<&str> = c.iter().map(|&i| flow.steps[i].name.as_str()).collect();
        let s = &flow.steps[c[0]];
        diags.push(Diagnostic::new(s.pos, "loop", format!("steps {} loop without ever asking the caller anything, so the call would never end", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" → "))));
    }

    // `resume` only makes sense inside a handler.
    let main = g.reachable(start, false);
    for (i, &in_main) in main.iter().enumerate() {
        if in_main && g.resumes[i] {
            let s = &flow.steps[i];
            let pos = targets(&s.action)
                .into_iter()
                .find(|t| t.is_resume())
                .map_or(s.pos, |t| t.pos);
            diags.push(Diagnostic::new(pos, "resume-outside-handler", format!("step `{}` is part of the main conversation, so there is no interrupted question to `resume`", s.name)));
        }
    }

    // Names in templates and conditions.
    let slots_collected: HashMap<&str, SlotType> = {
        let mut m = HashMap::new();
        for s in &flow.steps {
            if let Action::Ask(a) = &s.action
                && let Some(sl) = &a.slot
                && let Some(prev) = m.insert(sl.name.as_str(), sl.ty)
                && prev != sl.ty
            {
                diags.push(Diagnostic::new(
                    sl.pos,
                    "slot-type",
                    format!(
                        "slot `{}` is collected as `{}` here and as `{}` elsewhere",
                        sl.name,
                        sl.ty.name(),
                        prev.name()
                    ),
                ));
            }
        }
        m
    };
    let vars_set: HashSet<String> = flow
        .steps
        .iter()
        .flat_map(|s| match &s.action {
            Action::Set { assign, .. } => assign.iter().map(|(n, _, _)| n.clone()).collect(),
            Action::Webhook(w) => w.save_as.iter().cloned().collect(),
            _ => Vec::new(),
        })
        .collect();
    let check_name = |path: &[String], pos: Pos, diags: &mut Vec<Diagnostic>| -> Option<String> {
        let root = path[0].as_str();
        let field = path.get(1).map(String::as_str);
        match (root, field) {
            ("today" | "now", None) => None,
            ("lead", Some(f)) => {
                if path.len() > 2 {
                    diags.push(Diagnostic::new(
                        pos,
                        "unknown-name",
                        format!("`{}`: lead fields have no parts", path.join(".")),
                    ));
                } else if !flow.lead.contains_key(f) {
                    let hint = suggest(f, flow.lead.keys().map(String::as_str));
                    diags.push(Diagnostic::new(pos, "unknown-lead-field", format!("the lead schema has no field `{f}`{hint}: declare it under `lead:` so campaigns must provide it")));
                }
                None
            }
            ("bank", Some(f)) => {
                if !flow.bank.contains_key(f) || path.len() > 2 {
                    let hint = suggest(f, flow.bank.keys().map(String::as_str));
                    diags.push(Diagnostic::new(
                        pos,
                        "unknown-name",
                        format!("`bank` has no field `{f}`{hint}: declare it under `bank:`"),
                    ));
                }
                None
            }
            ("slots", Some(f)) => {
                if path.len() > 2 {
                    diags.push(Diagnostic::new(
                        pos,
                        "unknown-name",
                        format!("`{}`: slots have no parts", path.join(".")),
                    ));
                    None
                } else if !slots_collected.contains_key(f) {
                    let hint = suggest(f, slots_collected.keys().copied());
                    diags.push(Diagnostic::new(
                        pos,
                        "unknown-slot",
                        format!("no step collects slot `{f}`{hint}"),
                    ));
                    None
                } else {
                    Some(format!("slots.{f}"))
                }
            }
            ("vars", Some(f)) => {
                if !vars_set.contains(f) {
                    let hint = suggest(f, vars_set.iter().map(String::as_str));
                    diags.push(Diagnostic::new(
                        pos,
                        "unknown-var",
                        format!("no step sets variable `{f}`{hint}"),
                    ));
                    None
                } else {
                    Some(format!("vars.{f}"))
                }
            }
            _ => {
                diags.push(Diagnostic::new(pos, "unknown-name", format!("`{}` is not a name a flow can use: names start with lead., bank., slots. or vars., or are `today`/`now`", path.join("."))));
                None
            }
        }
    };
    for d in &flow.disclosures {
        for (path, pos) in d.text.names() {
            if let Some(dynamic) = check_name(path, pos, &mut diags) {
                diags.push(Diagnostic::new(pos, "use-before-set", format!("disclosure `{}` uses `{dynamic}`, which is not known when disclosures are spoken: use lead and bank fields only", d.name)));
            }
        }
    }
    if let Some(message) = &flow.voicemail {
        for (path, pos) in message.names() {
            if let Some(dynamic) = check_name(path, pos, &mut diags) {
                diags.push(Diagnostic::new(pos, "use-before-set", format!("the voicemail message uses `{dynamic}`, which is not known when a machine answers: use lead and bank fields only")));
            }
        }
    }
    let defined = must_analysis(&g, start, &|_| Vec::new(), true);
    for (i, s) in flow.steps.iter().enumerate() {
        if !reach[i] {
            continue;
        }
        let have = defined[i].clone().unwrap_or_default();
        let (templates, exprs, own) = uses(s);
        let mut names: Vec<(&[String], Pos)> = Vec::new();
        for t in &templates {
            names.extend(t.names());
        }
        let expr_names: Vec<(Vec<String>, Pos)> = exprs.iter().flat_map(|e| e.names()).collect();
        names.extend(expr_names.iter().map(|(p, pos)| (p.as_slice(), *pos)));
        for (path, pos) in names {
            if let Some(dynamic) = check_name(path, pos, &mut diags)
                && !have.contains(&dynamic)
            {
                diags.push(Diagnostic::new(pos, "use-before-set", format!("`{dynamic}` may be used before it is set: on some path to step `{}` nothing sets it", s.name)));
            }
        }
        if let (Action::Ask(a), Some(own)) = (&s.action, own)
            && let Some(c) = &a.confirm
        {
            for (path, pos) in c.names() {
                if let Some(dynamic) = check_name(path, pos, &mut diags)
                    && !have.contains(&dynamic)
                    && dynamic != format!("slots.{own}")
                {
                    diags.push(Diagnostic::new(pos, "use-before-set", format!("`{dynamic}` may be used before it is set: on some path to step `{}` nothing sets it", s.name)));
                }
            }
        }
        // Intents named in `expect` must exist.
        if let Action::Ask(a) = &s.action {
            for (k, pos, _) in &a.expect {
                if let ExpectKey::Intent(name) = k
                    && !flow.intents.contains_key(name)
                {
                    let hint = suggest(
                        name,
                        flow.intents.keys().map(String::as_str).chain(["yes", "no"]),
                    );
                    diags.push(Diagnostic::new(
                        *pos,
                        "unknown-intent",
                        format!("intent `{name}` is not declared under `intents:`{hint}"),
                    ));
                }
            }
        }
    }

    // Compliance: declared disclosures, and each spoken before any other content on every path.
    let declared: HashSet<&str> = flow.disclosures.iter().map(|d| d.name.as_str()).collect();
    for s in &flow.steps {
        for (name, pos) in &s.disclose {
            if !declared.contains(name.as_str()) {
                let hint = suggest(name, declared.iter().copied());
                diags.push(Diagnostic::new(
                    *pos,
                    "unknown-disclosure",
                    format!(
                        "disclosure `{name}` is not declared under `compliance.disclosures`{hint}"
                    ),
                ));
            }
        }
    }
    let disclosed = must_analysis(
        &g,
        start,
        &|i| {
            flow.steps[i]
                .disclose
                .iter()
                .map(|(n, _)| n.clone())
                .collect()
        },
        false,
    );
    for (i, s) in flow.steps.iter().enumerate() {
        if !reach[i] {
            continue;
        }
        let speaks = s.say.is_some()
            || matches!(
                s.action,
                Action::Ask(_) | Action::Transfer(_) | Action::ColdTransfer(_)
            );
        if !speaks {
            continue;
        }
        let mut have = disclosed[i].clone().unwrap_or_default();
        have.extend(s.disclose.iter().map(|(n, _)| n.clone()));
        for d in &flow.disclosures {
            if have.contains(&d.name) {
                continue;
            }
            let name = d.name.clone();
            let path = g
                .witness(start, i, &|j| {
                    !flow.steps[j].disclose.iter().any(|(n, _)| *n == name)
                })
                .map(|p| p.join(" → "))
                .unwrap_or_else(|| "a handler".into());
            let what = if matches!(s.action, Action::Transfer(_)) {
                "hands the call to an agent"
            } else if matches!(s.action, Action::ColdTransfer(_)) {
                "hands the call to an outside number"
            } else {
                "speaks"
            };
            diags.push(Diagnostic::new(
                s.pos,
                "compliance",
                format!(
                    "step `{}` {what} before the mandatory `{}` disclosure on the path {path}",
                    s.name, d.name
                ),
            ));
        }
    }

    // Opt-out: `stop_calling` must be handled, and every path from it must add the number to DNC.
    // (A flow that never listens cannot hear an opt-out: it needs no handler.)
    let listens = flow
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::Ask(_)));
    match flow.handlers.get(&Handler::StopCalling) {
        None if !listens => {}
        None => diags.push(Diagnostic::new(Pos::new(1, 1), "opt-out", "the flow does not handle `stop_calling`: add `handlers: {stop_calling: STEP}` leading to a `dnc` step, so an opt-out is honoured on every step")),
        Some(t) => {
            if let Some(from) = t.step {
                let is_dnc = |j: usize| matches!(flow.steps[j].action, Action::Dnc { .. });
                if !is_dnc(from) {
                    // Search for a finishing step reachable without passing a DNC step.
                    let mut seen = vec![false; n];
                    let mut q = VecDeque::from([from]);
                    seen[from] = true;
                    let mut escape = None;
                    while let Some(i) = q.pop_front() {
                        let fin = matches!(flow.steps[i].action, Action::End { .. } | Action::Transfer(_) | Action::ColdTransfer(_)) || g.resumes[i];
                        if fin {
                            escape = Some(i);
                            break;
                        }
                        for (j, _) in &g.succ[i] {
                            if !seen[*j] && !is_dnc(*j) {
                                seen[*j] = true;
                                q.push_back(*j);
                            }
                        }
                    }
                    if let Some(e) = escape {
                        diags.push(Diagnostic::new(t.pos, "opt-out", format!("the `stop_calling` handler can reach step `{}` without adding the number to the do-not-call list (`dnc`)", flow.steps[e].name)));
                    }
                }
            }
        }
    }
    diags
}
