import type { Connection } from '../../transport/types.js';

/**
 * Which stream connections follow which topic: the stream sessions' side of the app's publish (the
 * transport keeps its own for WebSockets). Sends the same text to each; the set is copied per
 * publish because a send may close a connection, which leaves its topics.
 */
export class StreamTopics {
  private readonly byTopic = new Map<string, Set<Connection>>();

  add(topic: string, connection: Connection): void {
    let members = this.byTopic.get(topic);
    if (!members) this.byTopic.set(topic, (members = new Set()));
    members.add(connection);
  }

  remove(topic: string, connection: Connection): void {
    const members = this.byTopic.get(topic);
    if (!members) return;
    members.delete(connection);
    if (members.size === 0) this.byTopic.delete(topic);
  }

  publish(topic: string, text: string): void {
    const members = this.byTopic.get(topic);
    if (!members) return;
    for (const connection of [...members]) connection.send(text);
  }
}
