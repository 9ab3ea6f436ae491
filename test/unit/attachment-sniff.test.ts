import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { SNIFF_BYTES, narrowByDeclared, sniff, typeAllowed } from '../../src/services/attachments/sniff.js';

function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

function concat(...parts: (Uint8Array | string)[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : Buffer.from(part)))));
}

/** An ISO-BMFF ftyp box: size, 'ftyp', major brand, minor version, compatible brands. */
function ftyp(major: string, ...compatible: string[]): Uint8Array {
  const size = 16 + 4 * compatible.length;
  const head = Buffer.alloc(8);
  head.writeUInt32BE(size, 0);
  head.write('ftyp', 4, 'latin1');
  return concat(head, major, hex('00000000'), ...compatible, hex('00000008 66726565'));
}

/** The first Ogg page of a stream whose first packet is `packet`. */
function oggPage(packet: string): Uint8Array {
  return concat('OggS', hex('00 02 0000000000000000 01020304 00000000 00000000 01'), String.fromCharCode(packet.length), packet);
}

const tiny = () => sharp({ create: { width: 4, height: 3, channels: 3, background: '#c04020' } });

describe('sniff', () => {
  it('recognises the images sharp writes, from their first bytes', async () => {
    const cases: [string, Promise<Buffer>][] = [
      ['image/jpeg', tiny().jpeg().toBuffer()],
      ['image/png', tiny().png().toBuffer()],
      ['image/gif', tiny().gif().toBuffer()],
      ['image/webp', tiny().webp().toBuffer()],
      ['image/avif', tiny().avif().toBuffer()],
      ['image/tiff', tiny().tiff().toBuffer()],
    ];
    for (const [mime, bytes] of cases) assert.equal(sniff((await bytes).subarray(0, SNIFF_BYTES)), mime);
  });

  it('recognises the other image headers', () => {
    assert.equal(sniff(hex('4d4d002a 00000008')), 'image/tiff', 'big-endian TIFF');
    assert.equal(sniff(concat('BM', hex('8a000000 0000 0000 8a000000 7c000000 04000000'))), 'image/bmp');
    assert.equal(sniff(concat('BMW is a car brand, not a bitmap\n')), 'text/plain', '"BM" text is not a bitmap');
    assert.equal(sniff(ftyp('heic', 'mif1', 'heic')), 'image/heic');
    assert.equal(sniff(ftyp('mif1', 'mif1', 'heic')), 'image/heic', 'an iPhone-style generic major with heic among the brands');
    assert.equal(sniff(ftyp('mif1', 'mif1', 'miaf')), 'image/heif');
    assert.equal(sniff(ftyp('mif1', 'avif', 'mif1', 'miaf')), 'image/avif');
  });

  it('tells SVG from other text, with or without an XML declaration, comments or a doctype', () => {
    assert.equal(sniff(concat('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')), 'image/svg+xml');
    assert.equal(
      sniff(Buffer.from('\uFEFF<?xml version="1.0"?>\n<!-- made by hand -->\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x">\n<svg>', 'utf8')),
      'image/svg+xml',
    );
    assert.equal(sniff(concat('<html><body><svg></svg></body></html>')), 'text/plain', 'HTML stays text (served as a download)');
  });

  it('recognises audio and video containers', () => {
    assert.equal(sniff(ftyp('isom', 'isom', 'iso2', 'avc1', 'mp41')), 'video/mp4');
    assert.equal(sniff(ftyp('mp42', 'mp42', 'isom')), 'video/mp4');
    assert.equal(sniff(ftyp('qt  ', 'qt  ')), 'video/quicktime');
    assert.equal(sniff(ftyp('M4A ', 'M4A ', 'mp42', 'isom')), 'audio/mp4');
    assert.equal(sniff(ftyp('3gp4', '3gp4', 'isom')), 'video/3gpp');
    // An EBML header as browsers' MediaRecorder writes it: DocType "webm".
    assert.equal(sniff(hex('1a45dfa3 9f 4286 81 01 42f7 81 01 42f2 81 04 42f3 81 08 4282 84 7765626d 4287 81 04 4285 81 02')), 'video/webm');
    assert.equal(sniff(hex('1a45dfa3 a3 4286 81 01 42f7 81 01 42f2 81 04 42f3 81 08 4282 88 6d6174726f736b61 4287 81 04')), 'video/x-matroska');
    assert.equal(sniff(oggPage('OpusHead\x01\x02\x38\x01')), 'audio/ogg');
    assert.equal(sniff(oggPage('\x01vorbis\x00\x00\x00\x00')), 'audio/ogg');
    assert.equal(sniff(oggPage('\x80theora\x03\x02')), 'video/ogg');
    assert.equal(sniff(concat('ID3', hex('04000000000f'), 'TIT2')), 'audio/mpeg');
    assert.equal(sniff(hex('fffb9064 00000000 00000000')), 'audio/mpeg', 'MPEG-1 layer III frame, 128 kb/s, 44.1 kHz');
    assert.equal(sniff(hex('fff15080 2e7ffc')), 'audio/aac', 'ADTS');
    assert.equal(sniff(concat('RIFF', hex('24080000'), 'WAVEfmt ', hex('10000000 0100 0100'))), 'audio/wav');
    assert.equal(sniff(concat('fLaC', hex('00000022 1000 1000'))), 'audio/flac');
  });

  it('recognises documents and archives', () => {
    assert.equal(sniff(concat('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n')), 'application/pdf');
    assert.equal(sniff(concat('PK', hex('0304 1400 0000 0800'), 'word/document.xml')), 'application/zip');
    assert.equal(sniff(gzipSync(Buffer.from('hello'))), 'application/gzip');
  });

  it('calls valid UTF-8 text/plain, and binary or broken UTF-8 octet-stream', () => {
    assert.equal(sniff(concat(Buffer.from('Grüße, 世界 🌍\r\n\tand a tab\n', 'utf8'))), 'text/plain');
    assert.equal(sniff(hex('00 01 02 03 ff fe')), 'application/octet-stream');
    assert.equal(sniff(concat('hello\x00world')), 'application/octet-stream', 'NUL is binary');
    assert.equal(sniff(hex('48 69 c3')), 'application/octet-stream', 'a file that ends inside a character is not UTF-8');
    assert.equal(sniff(hex('c0 af')), 'application/octet-stream', 'an overlong form');
    assert.equal(sniff(hex('ed a0 80')), 'application/octet-stream', 'a surrogate');
    assert.equal(sniff(new Uint8Array(0)), 'application/octet-stream', 'an empty file');
  });

  it('accepts a head cut inside a character when it is SNIFF_BYTES long (the file goes on)', () => {
    const text = Buffer.from('é'.repeat(SNIFF_BYTES), 'utf8');
    assert.equal(sniff(text.subarray(0, SNIFF_BYTES - 1)), 'application/octet-stream', 'shorter: the file ended there');
    assert.equal(sniff(Buffer.concat([Buffer.from('a'), text]).subarray(0, SNIFF_BYTES)), 'text/plain');
    assert.equal(sniff(Buffer.concat([Buffer.from('a'), text])), 'text/plain', 'a longer head is cut to SNIFF_BYTES');
  });
});

describe('typeAllowed', () => {
  it('matches exact types, type/* and *', () => {
    assert.equal(typeAllowed('image/png', '*'), true);
    assert.equal(typeAllowed('application/octet-stream', '*/*'), true);
    assert.equal(typeAllowed('image/png', 'image/*, video/*'), true);
    assert.equal(typeAllowed('video/webm', 'image/*, video/*'), true);
    assert.equal(typeAllowed('audio/ogg', 'image/*, video/*'), false);
    assert.equal(typeAllowed('application/pdf', 'image/*,application/pdf'), true);
    assert.equal(typeAllowed('application/pdfx', 'application/pdf'), false);
    assert.equal(typeAllowed('imagex/png', 'image/*'), false, 'a prefix is a whole type');
  });

  it('ignores case, spaces and parameters, and an empty entry allows nothing', () => {
    assert.equal(typeAllowed('text/plain; charset=utf-8', ' TEXT/Plain '), true);
    assert.equal(typeAllowed('text/plain', ''), false);
    assert.equal(typeAllowed('text/plain', ' , '), false);
  });
});

describe('narrowByDeclared', () => {
  it('lets a recorder say its WebM, MP4 or Ogg holds sound alone', () => {
    assert.equal(narrowByDeclared('video/webm', 'audio/webm;codecs=opus'), 'audio/webm');
    assert.equal(narrowByDeclared('video/mp4', 'audio/mp4'), 'audio/mp4');
    assert.equal(narrowByDeclared('video/mp4', 'audio/x-m4a'), 'audio/mp4');
    assert.equal(narrowByDeclared('video/ogg', 'AUDIO/OGG'), 'audio/ogg');
  });

  it('never changes the container nor turns a file into something else', () => {
    assert.equal(narrowByDeclared('video/webm', 'audio/mp4'), 'video/webm');
    assert.equal(narrowByDeclared('video/webm', 'image/png'), 'video/webm');
    assert.equal(narrowByDeclared('application/pdf', 'audio/webm'), 'application/pdf');
    assert.equal(narrowByDeclared('text/plain', 'text/html'), 'text/plain');
    assert.equal(narrowByDeclared('video/webm', ''), 'video/webm');
  });
});
