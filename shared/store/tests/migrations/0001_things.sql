CREATE TABLE things (id uuid PRIMARY KEY);
