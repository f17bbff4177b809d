// The DocStore conformance suite moves here from core/test.
export {}
