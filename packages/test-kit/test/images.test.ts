import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ownerId, ownerIsGone } from '../src/harness/container-owner.ts';
import {
  containerImage,
  isLocalKafkaImage,
  LOCAL_KAFKA_ADVERTISED_FILE,
  LOCAL_KAFKA_WAITING_LINE,
} from '../src/harness/containers.ts';
import { baseRecipe, kafkaRecipe, rabbitmqRecipe, recipeHash, redisRecipe } from '../src/harness/images.ts';

function fakeLib(jars: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hoptrace-lib-'));
  for (const [name, content] of Object.entries(jars)) writeFileSync(join(dir, name), content);
  return dir;
}

describe('local image recipes', () => {
  const recipe = { containerfile: 'FROM x\n', files: { 'a.conf': 'a=1\n', 'b.sh': 'echo b\n' }, dirs: {} };

  it('hashes the same recipe to the same tag, whatever the order of its files', () => {
    const reordered = { ...recipe, files: { 'b.sh': 'echo b\n', 'a.conf': 'a=1\n' } };
    expect(recipeHash(reordered)).toBe(recipeHash(recipe));
    expect(recipeHash(recipe)).toMatch(/^[0-9a-f]{12}$/);
  });

  it('changes the tag when the Containerfile, a file or a file name changes', () => {
    const tags = new Set([
      recipeHash(recipe),
      recipeHash({ ...recipe, containerfile: 'FROM y\n' }),
      recipeHash({ ...recipe, files: { ...recipe.files, 'a.conf': 'a=2\n' } }),
      recipeHash({ ...recipe, files: { 'c.conf': 'a=1\n', 'b.sh': 'echo b\n' } }),
    ]);
    expect(tags.size).toBe(4);
  });

  it('rebuilds Kafka when a jar changes, and keys its tag by version', () => {
    const before = kafkaRecipe(
      'localhost/hoptrace-base:t',
      '3.9.2',
      fakeLib({ 'kafka_2.13-3.9.2.jar': 'one' }),
    );
    const same = kafkaRecipe(
      'localhost/hoptrace-base:t',
      '3.9.2',
      fakeLib({ 'kafka_2.13-3.9.2.jar': 'one' }),
    );
    const changed = kafkaRecipe(
      'localhost/hoptrace-base:t',
      '3.9.2',
      fakeLib({ 'kafka_2.13-3.9.2.jar': 'two' }),
    );
    expect(same.tag).toBe(before.tag);
    expect(changed.tag).not.toBe(before.tag);
    expect(before.tag).toMatch(/^3\.9\.2-[0-9a-f]{12}$/);
  });

  it('hashes files in nested directories of the context', () => {
    const lib = fakeLib({ 'a.jar': 'a' });
    const before = recipeHash({ ...recipe, dirs: { lib } });
    mkdirSync(join(lib, 'nested'));
    writeFileSync(join(lib, 'nested', 'b.jar'), 'b');
    expect(recipeHash({ ...recipe, dirs: { lib } })).not.toBe(before);
  });

  it('derives every broker image from the one base, so a new base rebuilds all three', () => {
    const lib = fakeLib({ 'kafka_2.13-3.9.2.jar': 'one' });
    const one = baseRecipe('bookworm');
    expect(one.tag).toMatch(/^bookworm-[0-9a-f]{12}$/);
    for (const make of [redisRecipe, rabbitmqRecipe, (b: string) => kafkaRecipe(b, '3.9.2', lib)]) {
      expect(make('localhost/hoptrace-base:one').containerfile).toContain(
        'FROM localhost/hoptrace-base:one\n',
      );
      expect(make('localhost/hoptrace-base:one').tag).not.toBe(make('localhost/hoptrace-base:two').tag);
    }
  });

  it('starts Kafka only once the harness has written the advertised address', () => {
    const start = kafkaRecipe('b', '3.9.2', fakeLib({ 'x.jar': 'x' })).files['start.sh'] ?? '';
    expect(start).toContain(`echo '${LOCAL_KAFKA_WAITING_LINE}'`);
    expect(start).toContain(`advertised=$(head -n 1 ${LOCAL_KAFKA_ADVERTISED_FILE})`);
    expect(start.indexOf(LOCAL_KAFKA_WAITING_LINE)).toBeLessThan(start.indexOf('kafka.Kafka'));
    expect(kafkaRecipe('b', '3.9.2', fakeLib({ 'x.jar': 'x' })).files['server.properties']).not.toContain(
      'advertised.listeners',
    );
  });

  it('lets the container broker reach itself on its own listener, not the host-mapped one', () => {
    const recipe = kafkaRecipe('b', '3.9.2', fakeLib({ 'x.jar': 'x' }));
    const props = recipe.files['server.properties'] ?? '';
    expect(props).toContain('inter.broker.listener.name=BROKER\n');
    expect(props).toMatch(/^listeners=PLAINTEXT:\/\/0\.0\.0\.0:9092,BROKER:\/\/127\.0\.0\.1:9094,/m);
    expect(recipe.files['start.sh']).toContain(
      'echo "advertised.listeners=PLAINTEXT://$advertised,BROKER://127.0.0.1:9094" >> /tmp/server.properties',
    );
  });
});

describe('image choice', () => {
  it.each([
    ['localhost/hoptrace-kafka:3.9.2-0123456789ab', true],
    ['hoptrace-kafka', true],
    ['registry.example:5000/team/hoptrace-kafka:1', true],
    ['confluentinc/cp-kafka:7.9.0', false],
    ['localhost/hoptrace-kafka-old:1', false],
  ])('%s is the local Kafka image: %s', (image, local) => {
    expect(isLocalKafkaImage(image)).toBe(local);
  });

  it('uses the override when set and the public image otherwise', () => {
    expect(containerImage('redis', {})).toBe('redis:7-alpine');
    expect(containerImage('redis', { HOPTRACE_REDIS_IMAGE: 'localhost/hoptrace-redis:x' })).toBe(
      'localhost/hoptrace-redis:x',
    );
  });
});

describe('container owners', () => {
  it('knows this process is alive and another host is not its business', () => {
    expect(ownerIsGone(ownerId())).toBe(false);
    expect(ownerIsGone(`not-${hostname()}/1/1`)).toBe(false);
    expect(ownerIsGone(undefined)).toBe(false);
  });

  it('finds an owner gone when its pid is gone or now belongs to a later process', () => {
    // Above the kernel's pid_max (at most 2^22), so no process can have it.
    expect(ownerIsGone(`${hostname()}/${2 ** 22 + 1}/1`)).toBe(true);
    expect(ownerIsGone(`${hostname()}/${process.pid}/1`)).toBe(true);
  });
});
