"""The laboratory around the trainer: the campaign that trains the shipped model over many
sessions, the gate that decides what ships, and the probes and comparisons behind the recipe
(``log.md`` holds their history and figures).  The trainer itself never imports from here."""
