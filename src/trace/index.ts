/** Tracing core: tracepoints, the ring, the tracer facade and the text and Chrome JSON writers. */
export * from './chromeJsonWriter.js';
export * from './events.js';
export * from './printf.js';
export * from './ring.js';
export * from './textWriter.js';
export * from './tracer.js';
