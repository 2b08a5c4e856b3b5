#!/bin/sh
if true; then
  echo yes
