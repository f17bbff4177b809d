export {
  contentOf, contentOfUpdates, describeDocStore, typedUpdates, type ConformanceOptions, type DocStoreFixture,
} from './doc-store-conformance.js'
