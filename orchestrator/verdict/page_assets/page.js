// Blind comparison page. PAGE (set id, comparisons with opaque tokens and image paths) is defined
// before this script. Votes live in localStorage under a key bound to the set id after every vote, so
// closing the page halfway loses nothing, and a page of another candidate set never sees them.
(function () {
  'use strict';
  const storageKey = 'lora-pipeline-votes-' + PAGE.set_id;
  const byToken = new Map(PAGE.comparisons.map(c => [c.id, c]));
  let votes = load();
  let history = [];
  let current = null;

  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(storageKey) || '{}');
      return (saved && saved.set_id === PAGE.set_id && saved.votes) ? saved.votes : {};
    } catch (error) { return {}; }
  }
  function save() {
    try {
      localStorage.setItem(storageKey, JSON.stringify({set_id: PAGE.set_id, votes: votes}));
    } catch (error) { say('could not save in this browser (' + error + '): export your votes now', true); }
  }
  function say(text, isError) {
    const box = document.getElementById('message');
    box.textContent = text;
    box.className = isError ? 'error' : '';
  }
  function next() {
    current = PAGE.comparisons.find(c => !(c.id in votes)) || null;
    const done = Object.keys(votes).length;
    const skipped = Object.values(votes).filter(v => v.choice === 'skip').length;
    document.getElementById('progress').textContent =
      done + ' / ' + PAGE.comparisons.length + ' judged' + (skipped ? ' (' + skipped + ' skipped)' : '');
    document.getElementById('bar').style.width = (100 * done / Math.max(1, PAGE.comparisons.length)) + '%';
    const pair = document.getElementById('pair');
    if (current === null) {
      pair.dataset.token = '';
      document.getElementById('left-image').removeAttribute('src');
      document.getElementById('right-image').removeAttribute('src');
      document.getElementById('prompt').textContent = 'All comparisons judged: export your votes.';
      return;
    }
    pair.dataset.token = current.id;
    document.getElementById('left-image').src = current.left_image;
    document.getElementById('right-image').src = current.right_image;
    document.getElementById('prompt').textContent = current.prompt || '';
  }
  function vote(choice) {
    if (current === null) return;
    votes[current.id] = {choice: choice, at: new Date().toISOString()};
    history.push(current.id);
    save();
    next();
  }
  function undo() {
    const token = history.pop();
    if (token === undefined) return;
    delete votes[token];
    save();
    next();
  }
  // FNV-1a (32 bit) over "token:choice" lines sorted by token; `votes apply` recomputes it, so a file
  // edited by hand is refused. It guards against accidents and edits, not against a determined forger.
  function checksum(entries) {
    const text = entries.map(e => e.id + ':' + e.choice).join('\n');
    let hash = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return ('00000000' + hash.toString(16)).slice(-8);
  }
  function document_() {
    const entries = Object.keys(votes).sort().map(id => ({id: id, choice: votes[id].choice, at: votes[id].at}));
    return {format: PAGE.format, version: PAGE.version, set_id: PAGE.set_id, source: PAGE.source,
            comparisons: PAGE.comparisons.length, votes: entries, checksum: checksum(entries)};
  }
  function exportVotes() {
    const text = JSON.stringify(document_(), null, 1);
    const box = document.getElementById('votes-output');
    box.value = text;
    box.style.display = 'block';
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([text], {type: 'application/json'}));
    link.download = 'votes.json';
    document.body.appendChild(link); link.click(); link.remove();
    say('exported ' + Object.keys(votes).length + ' votes as votes.json');
  }
  function importVotes(text) {
    let data;
    try { data = JSON.parse(text); } catch (error) { say('not a votes file: ' + error, true); return; }
    if (!data || data.format !== PAGE.format) { say('refused: not a votes file of this tool', true); return; }
    if (data.set_id !== PAGE.set_id) {
      say('refused: these votes belong to another set of candidates (' + data.set_id + '), this page is ' +
          PAGE.set_id, true);
      return;
    }
    const entries = Array.isArray(data.votes) ? data.votes : [];
    if (checksum(entries) !== data.checksum || entries.some(e => !byToken.has(e.id))) {
      say('refused: the votes file was changed after export (checksum or comparison ids do not match)', true);
      return;
    }
    entries.forEach(e => { votes[e.id] = {choice: e.choice, at: e.at}; });
    save();
    next();
    say('loaded ' + entries.length + ' votes');
  }
  const keys = {ArrowLeft: 'left', a: 'left', 1: 'left', ArrowRight: 'right', d: 'right', 2: 'right',
                ArrowDown: 'tie', t: 'tie', 0: 'tie', s: 'skip', ' ': 'skip'};
  document.addEventListener('keydown', event => {
    if (event.target && (event.target.tagName === 'TEXTAREA' || event.target.tagName === 'INPUT')) return;
    if (event.key in keys) { event.preventDefault(); vote(keys[event.key]); }
    else if (event.key === 'u' || event.key === 'Backspace') { event.preventDefault(); undo(); }
  });
  document.querySelectorAll('[data-vote]').forEach(b => b.addEventListener('click', () => vote(b.dataset.vote)));
  document.getElementById('left-image').addEventListener('click', () => vote('left'));
  document.getElementById('right-image').addEventListener('click', () => vote('right'));
  document.getElementById('undo').addEventListener('click', undo);
  document.getElementById('export').addEventListener('click', exportVotes);
  document.getElementById('import').addEventListener('click',
    () => importVotes(document.getElementById('votes-input').value));
  document.getElementById('votes-file').addEventListener('change', event => {
    const file = event.target.files[0];
    if (file) file.text().then(importVotes);
  });
  window.addEventListener('beforeunload', save);
  next();
})();
