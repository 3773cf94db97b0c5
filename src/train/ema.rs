//! Exponential moving average of the weights (Polyak averaging; DDPM Sec. 4 uses decay 0.9999).

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// `ema <- decay * ema + (1 - decay) * live`, parameter by parameter (matched by id).
pub fn update<M: Module>(ema: M, live: &M, decay: f64) -> M {
    let mut collect = Collect(HashMap::new());
    live.visit(&mut collect);
    ema.map(&mut Blend {
        live: collect.0,
        decay,
    })
}

struct Collect(HashMap<ParamId, Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0
            .insert(param.id, param.val().inner().flatten(0, D - 1));
    }
}

struct Blend {
    live: HashMap<ParamId, Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(live) = self.live.remove(&param.id) else {
            return param;
        };
        let decay = self.decay;
        param.map(|e| {
            let dims = e.dims();
            e * decay + live.reshape(dims) * (1.0 - decay)
        })
    }
}
