export {
  ProposalPathProvider, LocalPathProvider, StaticPathProvider, pathProviderFor,
  type PathInfo, type PathProvider, type PathProviderOptions, type RunMetadata
} from './providers.js'
