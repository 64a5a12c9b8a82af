export { SoftSignalBackend } from './soft-backend.js'
export { MockSignalBackend, type PutCallback } from './mock-backend.js'
export { setMockValue, callbackOnMockPut, getMockPutCalls, setMockPutProceeds, type HasBackend } from './helpers.js'
