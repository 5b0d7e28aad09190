//! Arbitrary operation sequences against the fixed in-memory store and its
//! reference model.
#![no_main]

use arbitrary::Arbitrary;
use faultline::store::model::StoreOp;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Append { days_back: u8, n: u8 },
    Retention { advance_hours: u8 },
    Query,
    Restart,
    Race { days_back: u8, advance_hours: u8, schedule: Vec<bool> },
}

impl From<Op> for StoreOp {
    fn from(op: Op) -> Self {
        match op {
            Op::Append { days_back, n } => StoreOp::Append {
                days_back: days_back.into(),
                n: n.into(),
            },
            Op::Retention { advance_hours } => StoreOp::Retention {
                advance_hours: advance_hours.into(),
            },
            Op::Query => StoreOp::Query,
            Op::Restart => StoreOp::Restart,
            Op::Race {
                days_back,
                advance_hours,
                schedule,
            } => StoreOp::Race {
                days_back: days_back.into(),
                advance_hours: advance_hours.into(),
                schedule,
            },
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let ops: Vec<StoreOp> = ops.into_iter().map(StoreOp::from).collect();
    faultline::fuzz::store_ops(&ops);
});
