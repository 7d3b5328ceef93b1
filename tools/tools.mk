# tools/: build tools that are not part of the product. tools/train/ trains the default model
# (Python, python3-torch); its tests check the trainer against the engine (docs/model-card.md).
TEST_SCRIPTS += $(wildcard tools/train/tests/test_*.sh)
