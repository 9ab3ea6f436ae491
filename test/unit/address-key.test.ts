import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressKey } from '../../src/services/limits/address-key.js';

describe('addressKey', () => {
  it('keeps an IPv4 address as it is', () => {
    assert.equal(addressKey('198.51.100.7'), '198.51.100.7');
  });

  it('counts an IPv6 address as its /64, however it is written', () => {
    const key = '2001:db8:0:1::/64';
    for (const address of ['2001:db8:0:1::1', '2001:0db8:0000:0001:ffff:ffff:ffff:ffff', '2001:db8:0:1:a:b:c:d', '2001:db8:0:1::7']) {
      assert.equal(addressKey(address), key, address);
    }
    assert.notEqual(addressKey('2001:db8:0:2::1'), key, 'another /64 is another key');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  });
});
