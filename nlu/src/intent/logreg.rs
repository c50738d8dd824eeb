//! Multinomial logistic regression over [dense embedding | sparse TF-IDF] rows, trained with
//! L-BFGS on mean cross-entropy plus an L2 penalty. The dense weights can be pulled towards a
//! prior (scaled class centroids) instead of zero, which helps when there are few examples.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::features::SparseRow;

/// Training rows: dense part (n × d) and sparse part (n rows over `sparse_dim` features).
pub struct Design<'a> {
    pub dense: ArrayView2<'a, f32>,
    pub sparse: &'a [SparseRow],
    pub sparse_dim: usize,
}

#[derive(Debug, Clone)]
pub struct LogReg {
    pub w_dense: Array2<f32>,
    pub w_sparse: Array2<f32>,
    pub bias: Array1<f32>,
}

pub struct Fit<'a> {
    pub l2: f32,
    /// d × C prior for the dense weights (zero when `None`).
    pub prior: Option<&'a Array2<f32>>,
    pub max_iter: usize,
}

impl LogReg {
    pub fn logits(&self, dense: ArrayView1<f32>, sparse: &SparseRow) -> Array1<f32> {
        let mut z = self.w_dense.t().dot(&dense) + &self.bias;
        for &(j, v) in sparse {
            z.scaled_add(v, &self.w_sparse.row(j as usize));
        }
        z
    }

    pub fn train(x: &Design, y: &[usize], classes: usize, fit: &Fit) -> LogReg {
        let d = x.dense.ncols();
        let sd = x.sparse_dim;
        let layout = Layout { d, sd, c: classes };
        let mut theta = vec![0.0f32; layout.len()];
        if let Some(p) = fit.prior {
            theta[..d * classes].copy_from_slice(p.as_slice().unwrap_or(&vec![0.0; d * classes]));
        }
        let f = |t: &[f32], g: &mut [f32]| loss_grad(x, y, &layout, fit, t, g);
        lbfgs(&mut theta, f, fit.max_iter);
        layout.unpack(&theta)
    }
}

struct Layout {
    d: usize,
    sd: usize,
    c: usize,
}

impl Layout {
    fn len(&self) -> usize {
        (self.d + self.sd + 1) * self.c
    }
    fn unpack(&self, t: &[f32]) -> LogReg {
        let (d, sd, c) = (self.d, self.sd, self.c);
        let w_dense = Array2::from_shape_vec((d, c), t[..d * c].to_vec())
            .unwrap_or_else(|_| Array2::zeros((d, c)));
        let w_sparse = Array2::from_shape_vec((sd, c), t[d * c..(d + sd) * c].to_vec())
            .unwrap_or_else(|_| Array2::zeros((sd, c)));
        let bias = Array1::from(t[(d + sd) * c..].to_vec());
        LogReg {
            w_dense,
            w_sparse,
            bias,
        }
    }
}

fn loss_grad(x: &Design, y: &[usize], l: &Layout, fit: &Fit, t: &[f32], g: &mut [f32]) -> f32 {
    let model = l.unpack(t);
    let n = y.len();
    let mut z = x.dense.dot(&model.w_dense) + model.bias.view().insert_axis(Axis(0));
    for (i, row) in x.sparse.iter().enumerate() {
        let mut zi = z.row_mut(i);
        for &(j, v) in row {
            zi.scaled_add(v, &model.w_sparse.row(j as usize));
        }
    }
    // Softmax in place; z becomes (P - Y) / n.
    let mut loss = 0.0f64;
    for (i, mut zi) in z.axis_iter_mut(Axis(0)).enumerate() {
        let m = zi.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        zi.mapv_inplace(|v| (v - m).exp());
        let sum = zi.sum();
        zi.mapv_inplace(|v| v / sum);
        loss -= f64::from(zi[y[i]].max(1e-12).ln());
        zi[y[i]] -= 1.0;
        zi.mapv_inplace(|v| v / n as f32);
    }
    let (d, sd, c) = (l.d, l.sd, l.c);
    let gd = x.dense.t().dot(&z);
    let mut gs = Array2::<f32>::zeros((sd, c));
    for (i, row) in x.sparse.iter().enumerate() {
        let zi = z.row(i);
        for &(j, v) in row {
            gs.row_mut(j as usize).scaled_add(v, &zi);
        }
    }
    let gb = z.sum_axis(Axis(0));
    let mut reg = 0.0f64;
    for (k, (gk, tk)) in g[..d * c].iter_mut().zip(&t[..d * c]).enumerate() {
        let p = fit.prior.and_then(|p| p.as_slice()).map_or(0.0, |p| p[k]);
        let diff = tk - p;
        reg += f64::from(diff * diff);
        *gk = gd.as_slice().map_or(0.0, |s| s[k]) + fit.l2 * diff;
    }
    for (k, (gk, tk)) in g[d * c..(d + sd) * c]
        .iter_mut()
        .zip(&t[d * c..(d + sd) * c])
        .enumerate()
    {
        reg += f64::from(tk * tk);
        *gk = gs.as_slice().map_or(0.0, |s| s[k]) + fit.l2 * tk;
    }
    g[(d + sd) * c..].copy_from_slice(gb.as_slice().unwrap_or(&vec![0.0; c]));
    (loss / n as f64 + 0.5 * f64::from(fit.l2) * reg) as f32
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Limited-memory BFGS (two-loop recursion, 7 pairs) with a backtracking Armijo line search.
fn lbfgs(x: &mut [f32], mut f: impl FnMut(&[f32], &mut [f32]) -> f32, max_iter: usize) {
    const M: usize = 7;
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(x, &mut g);
    let mut hist: std::collections::VecDeque<(Vec<f32>, Vec<f32>, f32)> = Default::default();
    let mut xn = vec![0.0; n];
    let mut gn = vec![0.0; n];
    for it in 0..max_iter {
        let gnorm = dot(&g, &g).sqrt();
        if gnorm < 1e-5 {
            break;
        }
        // Two-loop recursion: direction = -H g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(hist.len());
        for (sv, yv, rho) in hist.iter().rev() {
            let a = rho * dot(sv, &q);
            q.iter_mut().zip(yv).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        if let Some((sv, yv, _)) = hist.back() {
            let gamma = dot(sv, yv) / dot(yv, yv).max(1e-12);
            q.iter_mut().for_each(|v| *v *= gamma);
        } else {
            q.iter_mut().for_each(|v| *v /= gnorm);
        }
        for ((sv, yv, rho), a) in hist.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(yv, &q);
            q.iter_mut()
                .zip(sv)
                .for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let dir_dot = -dot(&q, &g);
        if dir_dot >= 0.0 {
            hist.clear();
            continue;
        }
        let mut step = 1.0f32;
        let mut accepted = false;
        for _ in 0..20 {
            xn.iter_mut()
                .zip(x.iter())
                .zip(&q)
                .for_each(|((o, xi), qi)| *o = xi - step * qi);
            let fn_ = f(&xn, &mut gn);
            if fn_ <= fx + 1e-4 * step * dir_dot {
                accepted = true;
                let sv: Vec<f32> = xn.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
                let yv: Vec<f32> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
                let sy = dot(&sv, &yv);
                if sy > 1e-10 {
                    if hist.len() == M {
                        hist.pop_front();
                    }
                    hist.push_back((sv, yv, 1.0 / sy));
                }
                x.copy_from_slice(&xn);
                g.copy_from_slice(&gn);
                let rel = (fx - fn_).abs() / fx.abs().max(1e-8);
                fx = fn_;
                if rel < 1e-7 && it > 5 {
                    return;
                }
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
    }
}
