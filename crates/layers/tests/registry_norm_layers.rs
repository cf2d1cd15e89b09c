//! Dropout, BatchNormalization and Reshape through the builtin registry
//! (as loading a Keras file makes them): class name + config in, the same
//! config out.

use hebb_layers::{BatchNormalization, Dropout, Layer, Registry, Reshape};

#[test]
fn builtin_registry_remakes_the_layers_from_their_configs() {
    let registry = Registry::builtin();
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Dropout::new(0.5).seed(7).name("dropout")),
        Box::new(
            BatchNormalization::new()
                .momentum(0.9)
                .name("batch_normalization"),
        ),
        Box::new(Reshape::new(&[28, 28, 1]).name("reshape")),
    ];
    for layer in layers {
        let made = registry
            .from_config(layer.class_name(), &layer.config())
            .unwrap();
        assert_eq!(made.class_name(), layer.class_name());
        assert_eq!(made.name(), layer.name());
        assert_eq!(made.config(), layer.config());
    }
}
