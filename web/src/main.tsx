import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { LoginScreen } from './login.js';
import { ChatModel } from './model.js';
import { type Session, loadSession } from './session.js';
import { ChatScreen } from './views.js';

/** The web client: the login screen, or the chat once a session is kept. */
function App() {
  const [model, setModel] = useState<ChatModel | undefined>(() => {
    const session = loadSession();
    return session ? new ChatModel(session) : undefined;
  });
  const [, setVersion] = useState(0);
  useEffect(() => {
    if (!model) return;
    const off = model.subscribe(() => setVersion((v) => v + 1));
    const shown = (): void => {
      if (document.visibilityState === 'visible') model.pageShown();
      // The open chat's unread counts in the title only while the page is hidden.
      model.notify();
    };
    // Back, Forward and an edited #thread-N: the chat the address names (navigation.ts).
    const follow = (): void => model.followLocation();
    document.addEventListener('visibilitychange', shown);
    window.addEventListener('popstate', follow);
    window.addEventListener('hashchange', follow);
    void model.start();
    return () => {
      off();
      document.removeEventListener('visibilitychange', shown);
      window.removeEventListener('popstate', follow);
      window.removeEventListener('hashchange', follow);
    };
  }, [model]);
  if (!model) return <LoginScreen onSession={(session: Session) => setModel(new ChatModel(session))} />;
  return <ChatScreen model={model} />;
}

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
