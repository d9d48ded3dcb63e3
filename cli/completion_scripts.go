package cli

// The completion scripts ask critq __complete for the candidates of the
// word under the cursor (see complete); they only add the shell's own
// file completion for the directives :dumps, :files and :dirs.

const bashCompletion = `# bash completion for critq (critq completion bash)
_critq() {
    local cur words cword
    if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
        _get_comp_words_by_ref -n =: cur words cword
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi
    local IFS=$'\n'
    local -a out
    out=($("${words[0]}" __complete "${words[@]:1:cword-1}" "$cur" 2>/dev/null))
    local n=${#out[@]}
    (( n > 0 )) || return 0
    local directive=${out[n-1]}
    unset 'out[n-1]'
    COMPREPLY=()
    local line
    for line in "${out[@]}"; do
        COMPREPLY+=("${line%%$'\t'*}")
    done
    case $directive in
    :dumps)
        compopt -o filenames 2>/dev/null
        COMPREPLY+=($(compgen -d -- "$cur"))
        COMPREPLY+=($(compgen -f -- "$cur" | grep -E '\.(tar|tar\.gz|tar\.zst)$'))
        ;;
    :files)
        compopt -o filenames 2>/dev/null
        COMPREPLY+=($(compgen -f -- "$cur"))
        ;;
    :dirs)
        compopt -o filenames 2>/dev/null
        COMPREPLY+=($(compgen -d -- "$cur"))
        ;;
    esac
    # readline replaces only the part of the word after = or :
    if [[ $cur == *[=:]* && $COMP_WORDBREAKS == *[=:]* ]]; then
        local pre=${cur%"${cur##*[=:]}"}
        COMPREPLY=("${COMPREPLY[@]#"$pre"}")
    fi
}
complete -o default -F _critq critq
`

const zshCompletion = `#compdef critq
# zsh completion for critq (critq completion zsh)
_critq() {
    local -a out cands
    local directive line
    out=("${(@f)$(${words[1]} __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
    (( ${#out} )) || return 1
    directive=${out[-1]}
    out[-1]=()
    for line in "${out[@]}"; do
        [[ -n $line ]] && cands+=("${line%%$'\t'*}")
    done
    (( ${#cands} )) && compadd -- "${cands[@]}"
    case $directive in
    :dumps) _files -g '*.(tar|tar.gz|tar.zst)(-.)' ;;
    :files) _files ;;
    :dirs) _files -/ ;;
    esac
    return 0
}
if [[ $funcstack[1] == _critq ]]; then
    _critq "$@"
else
    compdef _critq critq
fi
`

const fishCompletion = `# fish completion for critq (critq completion fish)
function __critq_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l out ($tokens[1] __complete $tokens[2..-1] $cur 2>/dev/null)
    test (count $out) -gt 0; or return
    set -l directive $out[-1]
    set -e out[-1]
    for line in $out
        echo $line
    end
    switch $directive
        case :dumps
            __fish_complete_directories $cur
            for f in $cur*.tar $cur*.tar.gz $cur*.tar.zst
                echo $f
            end
        case :files
            __fish_complete_path $cur
        case :dirs
            __fish_complete_directories $cur
    end
end
complete -c critq -f -a '(__critq_complete)'
`
