//! Input JSON of the built-in circuits (what `proofrack submit --input` sends and the
//! coordinator checks before a task exists): arbitrary text and JSON-shaped values.

use super::mutate::{apply, config, mutations};
use proofrack_kernels::circuits::circuit_by_name;
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "[0-9]{0,90}".prop_map(serde_json::Value::String),
        "-?[0-9a-fx]{0,12}".prop_map(serde_json::Value::String),
        ".{0,20}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![Just("x".to_string()), Just("key".to_string()), ".{0,6}"],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(2_000, 0xf4a3_0020))]

    #[test]
    fn arbitrary_text_never_panics_the_input_parser(text in ".{0,200}") {
        let c = circuit_by_name("mimc-4").expect("mimc-4");
        let _ = c.parse_inputs(&text);
    }

    #[test]
    fn json_shaped_inputs_never_panic_the_input_parser(v in json_value()) {
        let c = circuit_by_name("mimc-4").expect("mimc-4");
        let _ = c.parse_inputs(&v.to_string());
    }

    #[test]
    fn mutated_valid_inputs_never_panic_the_input_parser(ms in mutations()) {
        let c = circuit_by_name("mimc-4").expect("mimc-4");
        let bytes = apply(br#"{"x": "123456789", "key": "42"}"#, &ms);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = c.parse_inputs(text);
        }
    }
}
