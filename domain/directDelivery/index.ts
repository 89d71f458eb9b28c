export * from './events.js';
export * from './directGroups.js';
