/**
 * Whether this host stores numbers little-endian (every browser and Node
 * platform msn-web runs on does). The file formats msn-web reads and writes
 * are little-endian, so typed arrays can view their bytes directly when this
 * is true; the readers and writers swap or refuse otherwise.
 */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
