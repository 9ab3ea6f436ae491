import { createNodeTransport } from '../../src/transport/node/server.js';
import { transportContract } from './transport.contract.js';

transportContract('node:http + ws', (options) => createNodeTransport(options));
